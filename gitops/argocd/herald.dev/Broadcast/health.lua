-- Argo CD health of a herald.dev Broadcast, read from the conditions the operator writes
-- (kstatus conventions: Reconciling, Stalled, Ready; plus Paused and Complete).
-- Uses only Lua's base library: Argo CD runs health checks without the string library.

local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name then
      return c
    end
  end
  return nil
end

local function holds(name)
  local c = condition(name)
  return c ~= nil and c.status == "True"
end

local function said(name)
  local c = condition(name)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason
end

if obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "Deleting: queued work is purged, the ledger is kept."}
end

-- A status written for an older spec says nothing about the current one.
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end
if observed == nil then
  return {status = "Progressing", message = "Waiting for the operator to observe the Broadcast."}
end
if obj.metadata.generation ~= nil and observed < obj.metadata.generation then
  return {
    status = "Progressing",
    message = "Waiting for the operator to observe generation " .. obj.metadata.generation ..
      " (the status is of generation " .. observed .. ")."
  }
end

-- Stalled first: a paused broadcast that also cannot go on (budget spent, Secret missing)
-- needs someone to act, which Suspended would hide.
if holds("Stalled") then
  return {status = "Degraded", message = condition("Stalled").reason .. ": " .. said("Stalled")}
end
if holds("Paused") then
  return {status = "Suspended", message = said("Paused")}
end
if holds("Complete") then
  return {status = "Healthy", message = said("Complete")}
end
-- Ready without Complete: waiting for spec.schedule.startAt, as the spec asks.
if holds("Ready") then
  return {status = "Healthy", message = condition("Ready").reason .. ": " .. said("Ready")}
end
if holds("Reconciling") then
  return {status = "Progressing", message = condition("Reconciling").reason .. ": " .. said("Reconciling")}
end
return {status = "Progressing", message = "Waiting for the operator to report the Broadcast's state."}
