"""Who may send and read: real service account tokens, checked by the API server's
TokenReview, authorised by SubjectAccessReview against ordinary Roles."""

from __future__ import annotations

from typing import Any

# The fixtures' classes live in conftest.py.
Herald = Any
Cluster = Any

ORDER = {"chatId": 4242, "content": {"text": "Your order has shipped"}}
NO_SUCH_ID = "00000000-0000-0000-0000-000000000000"


async def test_a_granted_app_sends_and_reads_its_bots_messages(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    token = await cluster.account("shop", bots=["shop-bot"])
    async with herald.running() as api:
        status, body, _ = await api.post("shop-bot", ORDER, token=token, key="order-1")
        assert status == 202
        assert body["state"] == "pending"
        assert body["chatId"] == 4242

        status, read, _ = await api.get("shop-bot", body["id"], token=token)
        assert status == 200
        assert read == body


async def test_no_token_and_a_token_the_api_server_refuses_are_401(herald: Herald) -> None:
    await herald.put_bot("shop-bot")
    async with herald.running() as api:
        for token in (None, "not-a-token"):
            status, body, headers = await api.post("shop-bot", ORDER, token=token)
            assert status == 401, token
            assert headers["WWW-Authenticate"] == "Bearer"
            assert "token" in body["detail"]
        status, body, _ = await api.get("shop-bot", NO_SUCH_ID, token=None)
        assert status == 401
        assert "Authorization: Bearer" in body["detail"]
        assert await api.rows() == []


async def test_without_a_role_for_the_bot_and_verb_the_answer_is_403(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    await herald.put_bot("other-bot", bot_id="700002")
    no_role = await cluster.account("nobody")
    other_bot = await cluster.account("other", bots=["other-bot"])
    only_get = await cluster.account("reader", bots=["shop-bot"], verbs=("get",))
    only_create = await cluster.account("shop", bots=["shop-bot"], verbs=("create",))
    async with herald.running() as api:
        for token, who in ((no_role, "nobody"), (other_bot, "other"), (only_get, "reader")):
            status, body, _ = await api.post("shop-bot", ORDER, token=token)
            assert status == 403, who
            assert body["detail"].startswith(
                f"system:serviceaccount:{cluster.namespace}:{who} may not create "
                'messages.herald.dev "shop-bot"'
            )
            assert "a Role granting verb create on messages" in body["detail"]
        assert await api.rows() == []

        # Each verb is its own grant: reading needs get, sending create.
        _, sent, _ = await api.post("shop-bot", ORDER, token=only_create, key="order-1")
        status, _, _ = await api.get("shop-bot", sent["id"], token=only_get)
        assert status == 200
        status, body, _ = await api.get("shop-bot", sent["id"], token=only_create)
        assert status == 403
        assert "may not get" in body["detail"]


async def test_a_role_in_one_namespace_grants_nothing_in_another(
    herald: Herald, cluster: Cluster
) -> None:
    elsewhere = await cluster.other_namespace()
    await herald.put_bot("shop-bot")
    await herald.put_bot("shop-bot", bot_id="700002", namespace=elsewhere)
    token = await cluster.account("shop", bots=["shop-bot"])
    async with herald.running() as api:
        status, body, _ = await api.post("shop-bot", ORDER, token=token, namespace=elsewhere)
        assert status == 403
        assert f'in namespace "{elsewhere}"' in body["detail"]
        status, _, _ = await api.post("shop-bot", ORDER, token=token)
        assert status == 202


async def test_an_unknown_bot_is_404_to_whoever_may_send_to_it(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    token = await cluster.account("shop", bots=["shop-bot", "no-such-bot"])
    async with herald.running() as api:
        status, body, _ = await api.post("no-such-bot", ORDER, token=token)
        assert status == 404
        assert 'no Bot "no-such-bot" in namespace' in body["detail"]
        status, body, _ = await api.get("shop-bot", NO_SUCH_ID, token=token)
        assert status == 404
        assert f"no message {NO_SUCH_ID}" in body["detail"]
        assert await api.rows() == []


async def test_answers_are_kept_for_the_cache_time_yes_and_no_alike(
    herald: Herald, cluster: Cluster
) -> None:
    """With a long cache, a Role granted or withdrawn after the first request changes
    nothing for that token until the answer expires: the API server was asked once."""
    await herald.put_bot("shop-bot")
    allowed = await cluster.account("shop", bots=["shop-bot"])
    refused = await cluster.account("late")
    async with herald.running(auth_cache_seconds=3600) as api:
        status, _, _ = await api.post("shop-bot", ORDER, token=allowed, key="k1")
        assert status == 202
        status, _, _ = await api.post("shop-bot", ORDER, token=refused, key="k1")
        assert status == 403

        await cluster.k("delete", "rolebinding", "shop-messages")
        await cluster.grant("late", bots=["shop-bot"])

        async def both_changed() -> bool:
            return await cluster.can("create", "shop-bot", "late") and not await cluster.can(
                "create", "shop-bot", "shop"
            )

        await api.until(both_changed, "the API server authorises by the changed Roles")

        status, _, _ = await api.post("shop-bot", ORDER, token=allowed, key="k2")
        assert status == 202
        status, _, _ = await api.post("shop-bot", ORDER, token=refused, key="k3")
        assert status == 403


async def test_without_a_cache_every_request_is_reviewed_anew(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    token = await cluster.account("shop", bots=["shop-bot"])
    async with herald.running(auth_cache_seconds=0) as api:
        status, _, _ = await api.post("shop-bot", ORDER, token=token, key="k1")
        assert status == 202
        await cluster.k("delete", "rolebinding", "shop-messages")

        async def withdrawn() -> bool:
            return not await cluster.can("create", "shop-bot", "shop")

        await api.until(withdrawn, "the API server took the RoleBinding's deletion")
        status, _, _ = await api.post("shop-bot", ORDER, token=token, key="k2")
        assert status == 403


async def test_whoever_may_not_send_learns_nothing_of_the_bodys_problems(
    herald: Herald, cluster: Cluster
) -> None:
    await herald.put_bot("shop-bot")
    nobody = await cluster.account("nobody")
    bad = {"chatId": 0, "content": {"text": "x" * 5000, "parseMode": "Markdown"}}
    async with herald.running() as api:
        status, _, _ = await api.post("shop-bot", bad, token=None, key=None)
        assert status == 401
        status, _, _ = await api.post("shop-bot", bad, token=nobody, key=None)
        assert status == 403
        status, _, _ = await api.post("no-such-bot", bad, token=nobody)
        assert status == 403
