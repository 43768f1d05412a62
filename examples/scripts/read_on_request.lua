-- read_on_request.lua - a topic script (mqtt.script_topics) that reads registers on
-- request and answers on another topic.
--
-- Request (JSON): { "device": "1", "register": 10, "count": 3 } (count defaults to 1;
-- "device" is a device id of the configuration, or an address as GETMODBUS takes it).
-- Answer, on the request's MQTT 5 response topic or else on <IMEI>/script/answer:
-- { "device": "1", "register": 10, "values": [10, 11, 12] } or { ..., "error": "..." }.
-- With remote.allow_writes on, { "device": "1", "register": 20, "write": 1 } writes.

local ANSWER = modbridge.config("imei") .. "/script/answer"

function on_message(topic, payload, props)
  local req, err = modbridge.json_decode(payload)
  local answer = { request = payload }
  if type(req) ~= "table" or not req.device or not req.register then
    answer.error = err or "expected {\"device\": ..., \"register\": ...}"
  elseif req.write ~= nil then
    local ok, why = modbridge.write(req.device, req.register, req.write)
    answer = { device = req.device, register = req.register, written = ok or false, error = why }
  else
    local values, why = modbridge.read(req.device, req.register, req.count or 1)
    answer = { device = req.device, register = req.register, values = values, error = why }
  end
  modbridge.publish(props.response_topic or ANSWER, answer)
end
