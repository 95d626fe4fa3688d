# Тексты бота Herald, русский.

welcome = Привет, { $name }! Вы подписаны на рассылки этого бота. Чтобы отписаться, заблокируйте бота.
refused = Извините, это могут только администраторы Herald.
admin-help =
    Команды администратора Herald:
    /broadcasts – рассылки и их прогресс
    /status ИМЯ – подробности рассылки
    /pause ИМЯ, /resume ИМЯ – остановить и продолжить отправку
    /cancel ИМЯ – удалить рассылку (с подтверждением)
    Перешлите мне пост, чтобы разослать его.

usage = Использование: /{ $command } ИМЯ
bad-name = «{ $text }» не похоже на имя рассылки.
not-found = Рассылка { $name } не найдена.
kubernetes-error = Kubernetes отказал: { $reason }

list-empty = Рассылок пока нет. Перешлите мне пост, чтобы создать рассылку.
list-header = Рассылки:
list-line = { $name } · { $phase } { $bar } { $percent }

phase =
    { $phase ->
        [Pending] ожидает
        [Scheduled] запланирована
        [Sending] отправляется
        [Paused] на паузе
        [Stalled] ждёт исправления
        [Completed] завершена
        [Failed] сбой
       *[other] новая
    }

status-title = Рассылка { $name }: { $phase }
status-progress = { $bar } { $percent } ({ $done } из { $total })
status-counts = Доставлено { $delivered } · заблокировали { $blocked } · ошибки { $failed } · неизвестно { $uncertain } · в очереди { $pending }
status-rate = Скорость: { $observed } сообщ./с из { $limit } разрешённых
status-eta = Окончание: { $eta }
status-paused = Пауза (spec.paused): новые сообщения не отправляются.
status-recalled = Отозвано: удалено { $recalled } из { $delivered } доставленных сообщений
status-corrected = Исправлено: отредактировано { $corrected } из { $delivered } доставленных сообщений
status-condition = { $type }: { $status } ({ $reason }) { $message }

paused = Рассылка { $name } на паузе. Новые сообщения перестанут уходить в течение секунды.
resumed = Рассылка { $name } продолжается с того места, где остановилась.
cancel-ask = Удалить рассылку { $name }? Отправка прекратится навсегда; журнал доставки сохранится.
cancelled = Рассылка { $name } удалена.
cancel-kept = Рассылка { $name } оставлена.
up-to-date = Без изменений.
button-pause = ⏸ Пауза
button-resume = ▶ Продолжить
button-refresh = 🔄 Обновить
button-cancel = 🗑 Удалить
button-cancel-confirm = Да, удалить
button-cancel-abort = Нет, оставить

create-audience = Кому отправить этот пост?
audience-all = Всем ({ $count })
audience-language = Язык { $language } ({ $count })
create-rate = С какой скоростью отправлять?
rate-choice = { $rate } сообщ./с
create-confirm = Отправить этот пост: { $audience }, { $rate } сообщений в секунду?
audience-everyone = всем активным подписчикам
audience-only = подписчикам с языком { $language }
button-create = ✅ Создать рассылку
button-discard = ✖ Отменить
created = Рассылка { $name } создана.
discarded = Отменено, ничего не создано.
already-exists = Рассылка { $name } уже существует: этот пост уже отправляли.
dialog-expired = Этот выбор устарел. Перешлите пост ещё раз.

report =
    Рассылка { $name } завершена: { $outcome }.
    Доставлено { $delivered } из { $total } · заблокировали { $blocked } · ошибки { $failed } · неизвестно { $uncertain }
    Длительность: { $duration }
report-clicks = Нажатия на кнопки к этому моменту: { $clicks }
