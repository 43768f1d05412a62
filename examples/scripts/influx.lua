-- influx.lua - InfluxDB line protocol (logger.script).
--
-- One line per reading: measurement "modbus", tags imei and device, one integer field per
-- register ("r<address>=<value>i"), and the time in nanoseconds. Meant for the HTTP mode
-- (http.url: InfluxDB's /api/v2/write?org=...&bucket=...&precision=ns, with the token in
-- http.headers); through MQTT it suits Telegraf's mqtt_consumer with
-- data_format = "influx". Failed reads become a field error="...".

local function escape_tag(s)
  return (s:gsub("([, =])", "\\%1"))
end

function transform(msg)
  local fields = {}
  if msg.ERR then
    fields[1] = 'error="' .. msg.ERR:gsub('(["\\])', "\\%1") .. '"'
  else
    for _, block in ipairs(msg.blocks) do
      for i, v in ipairs(block.values) do
        local value = math.type(v) == "integer" and (v .. "i") or string.format("%.17g", v)
        fields[#fields + 1] = "r" .. (block.start + (i - 1) * block.width) .. "=" .. value
      end
    end
  end
  return string.format("modbus,imei=%s,device=%s %s %d", escape_tag(msg.IMEI),
    escape_tag(msg.ID), table.concat(fields, ","), msg.time_ms * 1000000)
end
