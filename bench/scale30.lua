-- scale30.lua - examples/scripts/scale.lua for the benchmark's devices: every device (any
-- id) has 30 holding registers 0..29, each with a name, a scale, an offset and 1 decimal. The
-- transform function is the example's; only the table of names differs. The message keeps
-- ID and TS (bench.py counts readings by them).

local map = {}
for a = 0, 29 do
  map[a] = { "value_" .. a, 0.1, -40, 1 }
end

local plans = {}

local function plan_of(msg)
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
    return msg
  end
  local plan = plans[msg.ID] or plan_of(msg)
  local out = { ID = msg.ID, TS = msg.TS, IMEI = msg.IMEI }
  local V = msg.V
  for i = 1, #plan do
    local p = plan[i]
    local m = p[5]
    out[p[2]] = math.floor((V[p[1]] * p[3] + p[4]) * m + 0.5) / m
  end
  return out
end
