# Texts of the Herald bot, English (the fallback for every other language).

welcome = Hi, { $name }! You are subscribed to this bot's broadcasts. Block the bot to stop them.
refused = Sorry, only Herald admins can do that.
admin-help =
    Herald admin commands:
    /broadcasts – list broadcasts with their progress
    /status NAME – details of one broadcast
    /pause NAME, /resume NAME – stop and continue sending
    /cancel NAME – delete a broadcast (asks first)
    Forward a post to me to broadcast it.

usage = Usage: /{ $command } NAME
bad-name = “{ $text }” is not a broadcast name.
not-found = Broadcast { $name } not found.
kubernetes-error = Kubernetes refused that: { $reason }

list-empty = No broadcasts yet. Forward a post to me to create one.
list-header = Broadcasts:
list-line = { $name } · { $phase } { $bar } { $percent }

phase =
    { $phase ->
        [Pending] pending
        [Scheduled] scheduled
        [Sending] sending
        [Paused] paused
        [Stalled] stalled
        [Completed] completed
        [Failed] failed
       *[other] new
    }

status-title = Broadcast { $name }: { $phase }
status-progress = { $bar } { $percent } ({ $done } of { $total })
status-counts = Delivered { $delivered } · blocked { $blocked } · failed { $failed } · uncertain { $uncertain } · pending { $pending }
status-rate = Rate: { $observed } msg/s of { $limit } allowed
status-eta = ETA: { $eta }
status-paused = Paused by spec.paused: no new messages leave.
status-recalled = Recalled: { $recalled } of { $delivered } delivered messages deleted
status-corrected = Corrected: { $corrected } of { $delivered } delivered messages edited
status-condition = { $type }: { $status } ({ $reason }) { $message }

paused = Paused { $name }. No new message leaves within about a second.
resumed = Resumed { $name }. Sending continues where it stopped.
cancel-ask = Delete broadcast { $name }? Sending stops for good; the delivery ledger is kept for audit.
cancelled = Deleted broadcast { $name }.
cancel-kept = Kept broadcast { $name }.
up-to-date = Up to date.
button-pause = ⏸ Pause
button-resume = ▶ Resume
button-refresh = 🔄 Refresh
button-cancel = 🗑 Delete
button-cancel-confirm = Yes, delete
button-cancel-abort = No, keep it

create-audience = Who should receive this post?
audience-all = Everyone ({ $count })
audience-language = Language { $language } ({ $count })
create-rate = How fast should it go out?
rate-choice = { $rate } msg/s
create-confirm = Send this post to { $audience } at { $rate } messages per second?
audience-everyone = every active subscriber
audience-only = subscribers with language { $language }
button-create = ✅ Create broadcast
button-discard = ✖ Discard
created = Created broadcast { $name }.
discarded = Discarded; nothing was created.
already-exists = Broadcast { $name } already exists: this post was submitted before.
dialog-expired = This choice has expired. Forward the post again.

report =
    Broadcast { $name } finished: { $outcome }.
    Delivered { $delivered } of { $total } · blocked { $blocked } · failed { $failed } · uncertain { $uncertain }
    Duration: { $duration }
report-clicks = Clicks so far: { $clicks }
