function on_message(topic, payload, props)
  local values = modbridge.read("plc", 0, 2)
  modbridge.publish("answers/plc", { values = values })
end
