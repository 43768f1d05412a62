-- scale.lua - scaling and offset with names (logger.script).
--
-- Each register the table below names becomes a member of the message, as
-- value * scale + offset; the others are left out. The message keeps the reading's
-- identity and time, and a failed read is sent as it is (with ERR).

-- [device id] = { [register address] = { name, scale, offset } }
local names = {
  ["1"] = {
    [1]   = { "temperature_c", 0.1, -40 },
    [10]  = { "pressure_bar", 0.01, 0 },
    [11]  = { "flow_m3h", 0.1, 0 },
    [100] = { "level_pct", 1, 0 },
  },
  ["2"] = {
    [10] = { "voltage_v", 0.1, 0 },
    [11] = { "current_a", 0.01, 0 },
    [12] = { "power_kw", 0.001, 0 },
  },
}

function transform(msg)
  local map = names[msg.ID]
  if msg.ERR or not map then
    return msg -- unchanged: the default message
  end
  local out = { ID = msg.ID, TS = msg.TS, IMEI = msg.IMEI }
  for _, block in ipairs(msg.blocks) do
    for i, value in ipairs(block.values) do
      local n = map[block.start + (i - 1) * block.width]
      if n then
        out[n[1]] = value * n[2] + n[3]
      end
    end
  end
  return out
end
