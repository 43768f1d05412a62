-- scale.lua - scaling and offset with names (logger.script).
--
-- Each register the table below names becomes a member of the message, as
-- value * scale + offset rounded to the given decimals (so 21.3 - 40 is sent as -18.7, not
-- as the -18.700000000000003 of binary arithmetic); the others are left out. The message
-- keeps the reading's identity and time, and a failed read is sent as it is (with ERR).

-- [device id] = { [register address] = { name, scale, offset, decimals } }
local names = {
  ["1"] = {
    [1]   = { "temperature_c", 0.1, -40, 1 },
    [10]  = { "pressure_bar", 0.01, 0, 2 },
    [11]  = { "flow_m3h", 0.1, 0, 1 },
    [100] = { "level_pct", 1, 0, 0 },
  },
  ["2"] = {
    [10] = { "voltage_v", 0.1, 0, 1 },
    [11] = { "current_a", 0.01, 0, 2 },
    [12] = { "power_kw", 0.001, 0, 3 },
  },
}

-- Per device, worked out at its first reading: { position in V, name, scale, offset,
-- 10^decimals }.
local plans = {}

local function plan_of(msg)
  local map = names[msg.ID]
  if not map then
    return nil
  end
  local plan, position = {}, 0
  for _, block in ipairs(msg.blocks) do
    for i = 1, #block.values do
      position = position + 1
      local n = map[block.start + (i - 1) * block.width]
      if n then
        plan[#plan + 1] = { position, n[1], n[2], n[3], 10.0 ^ n[4] }
      end
    end
  end
  plans[msg.ID] = plan
  return plan
end

function transform(msg)
  if msg.ERR then
    return msg -- unchanged: the default message
  end
  local plan = plans[msg.ID] or plan_of(msg)
  if not plan then
    return msg
  end
  local out = { ID = msg.ID, TS = msg.TS, IMEI = msg.IMEI }
  local V = msg.V
  for i = 1, #plan do
    local p = plan[i]
    local m = p[5]
    -- An integer divided by a power of ten is the double nearest that decimal.
    out[p[2]] = math.floor((V[p[1]] * p[3] + p[4]) * m + 0.5) / m
  end
  return out
end
