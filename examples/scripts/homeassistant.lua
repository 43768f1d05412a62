-- homeassistant.lua - Home Assistant MQTT discovery for a device's registers
-- (logger.script).
--
-- The first reading of each device after a start announces one sensor per register on
-- homeassistant/sensor/<id>/config; every reading then goes to one state topic,
-- modbridge/<imei>/<device>/state, as { "r<address>": value, ... }, which the sensors'
-- value templates read. (The announcements are not retained: Home Assistant keeps the
-- entities it discovered; a topic script on homeassistant/status can announce again when
-- Home Assistant restarts.)

local PREFIX = "homeassistant"

local function state_topic(msg)
  return "modbridge/" .. msg.IMEI .. "/" .. msg.ID .. "/state"
end

local function announce(msg, out)
  local device = {
    identifiers = { "modbridge_" .. msg.IMEI .. "_" .. msg.ID },
    name = "Modbus " .. msg.ID,
    via_device = "modbridge_" .. msg.IMEI,
  }
  for _, block in ipairs(msg.blocks) do
    for i = 1, #block.values do
      local key = "r" .. (block.start + (i - 1) * block.width)
      local id = "modbridge_" .. msg.IMEI .. "_" .. msg.ID .. "_" .. key
      out[#out + 1] = modbridge.message({
        name = msg.ID .. " " .. key,
        unique_id = id,
        state_topic = state_topic(msg),
        value_template = "{{ value_json." .. key .. " }}",
        device = device,
      }, PREFIX .. "/sensor/" .. id .. "/config")
    end
  end
end

function transform(msg)
  if msg.ERR then
    return nil -- Home Assistant shows the last value; the failure is in the log
  end
  local out = {}
  if not modbridge.state[msg.ID] then
    announce(msg, out)
    modbridge.state[msg.ID] = true
  end
  local state = {}
  for _, block in ipairs(msg.blocks) do
    for i, v in ipairs(block.values) do
      state["r" .. (block.start + (i - 1) * block.width)] = v
    end
  end
  out[#out + 1] = modbridge.message(state, state_topic(msg))
  return out
end
