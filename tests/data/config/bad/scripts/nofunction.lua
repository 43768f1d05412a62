-- defines tranform (a typo), not transform
function tranform(msg)
  return msg
end
