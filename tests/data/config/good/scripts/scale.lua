-- scaling with names, for the loader's test
local names = { [0] = { "temperature", 0.1 }, [1] = { "pressure", 0.01 } }

function transform(msg)
  if msg.ERR then return msg end
  local out = { device = msg.ID, ts = msg.TS }
  for _, b in ipairs(msg.blocks) do
    for i, v in ipairs(b.values) do
      local n = names[b.start + (i - 1) * b.width]
      if n then out[n[1]] = v * n[2] end
    end
  end
  return out
end
