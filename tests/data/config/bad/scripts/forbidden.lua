local f = io.open("/etc/passwd")

function on_message(topic, payload) end
