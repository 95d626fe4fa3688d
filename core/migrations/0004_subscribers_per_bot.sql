-- Subscribers belong to a bot: a user who started two bots is two subscribers, each with
-- its own language, tags and is_active, so a block of one bot leaves the other's alone and
-- a broadcast of one bot never reaches the other's users.
--
-- bot_id is text, the decimal digits of the id Telegram's getMe returns, as in
-- broadcasts.bot_id and in every record and key that names a bot (ControlRecord.bot_id,
-- lease.<bot_id>): one spelling end to end, compared without casts. The check keeps it
-- canonical, so "042" can never be a second spelling of bot 42.
ALTER TABLE subscribers ADD COLUMN bot_id text;

-- Rows from before belong to the one bot Herald served, and SQL alone cannot know its id.
-- It is, in this order: the id given to the migrator (`herald db migrate --bot-id ID` or
-- HERALD_DATABASE_LEGACY_BOT_ID, passed as the setting herald.legacy_bot_id); else the bot
-- of every Broadcast so far, when they all name the same one (those rows were its
-- audience); else the migration refuses, changing nothing, and says what to run.
DO $$
DECLARE
    chosen text := nullif(current_setting('herald.legacy_bot_id', true), '');
    known  text[];
    total  bigint;
BEGIN
    SELECT count(*) INTO total FROM subscribers;
    IF total = 0 THEN
        RETURN;
    END IF;
    IF chosen IS NULL THEN
        SELECT array_agg(DISTINCT bot_id ORDER BY bot_id) INTO known FROM broadcasts;
        IF cardinality(known) = 1 THEN
            chosen := known[1];
        END IF;
    END IF;
    IF chosen IS NULL THEN
        RAISE EXCEPTION
            'the % subscribers recorded before subscribers were kept per bot need the id of '
            'their bot, and Herald cannot tell it: %', total,
            CASE WHEN known IS NULL THEN 'no Broadcast names a bot yet'
                 ELSE 'Broadcasts name several bots (' || array_to_string(known, ', ') || ')'
            END
            USING HINT = 'run `herald db migrate --bot-id ID`, or set '
                'HERALD_DATABASE_LEGACY_BOT_ID=ID for the operator, with the id of the bot '
                'that recorded them (the digits before the colon of its token)';
    END IF;
    IF chosen !~ '^[1-9][0-9]*$' THEN
        RAISE EXCEPTION 'bot id % is not a bot id: it is the digits before the colon of a token',
            quote_literal(chosen);
    END IF;
    UPDATE subscribers SET bot_id = chosen;
END
$$;

ALTER TABLE subscribers
    ALTER COLUMN bot_id SET NOT NULL,
    ADD CONSTRAINT subscribers_bot_id_digits CHECK (bot_id ~ '^[1-9][0-9]*$'),
    DROP CONSTRAINT subscribers_pkey,
    ADD PRIMARY KEY (bot_id, chat_id);

-- Every read names the bot first: all active subscribers of a bot are a range of the primary
-- key, a language filter a range of this index.
DROP INDEX subscribers_active_language;
CREATE INDEX subscribers_active_language ON subscribers (bot_id, language_code) WHERE is_active;
-- The tag index stays on tags alone: a GIN index cannot lead with a text column without the
-- btree_gin extension, and Postgres combines it with the bot's range of the primary key.
