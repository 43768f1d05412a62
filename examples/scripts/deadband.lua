-- deadband.lua - report by exception (logger.script).
--
-- A reading is sent only when one of its values moved by more than DEADBAND since the
-- last reading that was sent for its device, or when HEARTBEAT_S seconds passed without
-- one (so the server still knows the device is alive). Failed reads are always sent.
-- Dropped readings are counted: `modbridge queue` shows them as "filtered".

local DEADBAND = 2        -- in register units
local HEARTBEAT_S = 600

function transform(msg)
  if msg.ERR then
    return msg
  end
  local last = modbridge.state[msg.ID]
  local now = msg.time_ms // 1000
  local changed = last == nil or now - last.sent_s >= HEARTBEAT_S
  if not changed then
    for i, v in ipairs(msg.V) do
      if math.abs(v - (last.values[i] or v)) > DEADBAND then
        changed = true
        break
      end
    end
  end
  if not changed then
    return nil
  end
  modbridge.state[msg.ID] = { sent_s = now, values = msg.V }
  return msg
end
