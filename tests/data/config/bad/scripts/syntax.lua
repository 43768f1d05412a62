-- a transformer with a syntax error on line 3
function transform(msg)
  local x = = 1
  return msg
end
