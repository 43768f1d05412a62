-- thingsboard.lua - ThingsBoard's gateway telemetry (logger.script).
--
-- ThingsBoard's MQTT gateway API takes the telemetry of many devices on one topic,
-- v1/gateway/telemetry, as { "<device>": [ { "ts": <ms>, "values": { ... } } ] }. The
-- gateway's device connects with its access token as the MQTT user name (mqtt.username).
-- Each register becomes a key "r<address>".

local TOPIC = "v1/gateway/telemetry"

function transform(msg)
  local values = {}
  if msg.ERR then
    values.error = msg.ERR
  else
    for _, block in ipairs(msg.blocks) do
      for i, v in ipairs(block.values) do
        values["r" .. (block.start + (i - 1) * block.width)] = v
      end
    end
  end
  local device = "modbridge-" .. msg.IMEI .. "-" .. msg.ID
  return modbridge.message({ [device] = { { ts = msg.time_ms, values = values } } }, TOPIC)
end
