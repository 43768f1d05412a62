-- scale30.lua - examples/scripts/scale.lua's transform for the benchmark's devices: every
-- device (any id) has 30 holding registers 0..29, each with a name, a scale and an offset.
-- The message keeps ID and TS (bench.py counts readings by them).

local map = {}
for a = 0, 29 do
  map[a] = { "value_" .. a, 0.1, -40 }
end

function transform(msg)
  if msg.ERR then
    return msg
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
