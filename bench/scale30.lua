-- scale30.lua - examples/scripts/scale.lua for the benchmark's devices: every device (any
-- id) has 30 holding registers 0..29, each with a name, a scale and an offset. The
-- transform function is the example's; only the table of names differs. The message keeps
-- ID and TS (bench.py counts readings by them).

local map = {}
for a = 0, 29 do
  map[a] = { "value_" .. a, 0.1, -40 }
end

local plans = {}

local function plan_of(msg)
  local plan, position = {}, 0
  for _, block in ipairs(msg.blocks) do
    for i = 1, #block.values do
      position = position + 1
      local n = map[block.start + (i - 1) * block.width]
      if n then
        plan[#plan + 1] = { position, n[1], n[2], n[3] }
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
    out[p[2]] = V[p[1]] * p[3] + p[4]
  end
  return out
end
