"""Interop: cograph driven by the Python `mcp` SDK, a client nobody here wrote.

    python clients.py HTTP_URL COGRAPH_BINARY DATA_DIR

Runs three scenarios against a running `cograph serve` on DATA_DIR and
exits non-zero, naming the failed check, if any of them goes wrong:

1. two agents with protocol sessions (2025-11-25 handshake) contend for one
   write lock, race on one function (a conflict with its diff, then a merge);
2. a stateless 2026-07-28 client identified by `register_agent`'s handle;
3. a stdio session (`cograph stdio`, through the hub of DATA_DIR) that sees
   the HTTP agents' locks.
"""

import asyncio
import sys

from mcp import Client, StdioServerParameters

F = (
    "fn interop::f(x: i64) -> i64 {\n"
    "  %0 = param 0\n"
    "  %1 = const 1\n"
    "  %2 = add %0, %1\n"
    "  %3 = const 2\n"
    "  %4 = mul %0, %3\n"
    "  %5 = add %2, %4\n"
    "  %6 = return %5\n"
    "}\n"
)
LOCK_F = {"locks": [{"function": "interop::f", "mode": "write"}]}

checks = 0


def check(cond, what, detail=None):
    global checks
    checks += 1
    if not cond:
        raise AssertionError(f"{what}: {detail!r}")


async def ok(client, tool, args):
    r = await client.call_tool(tool, args)
    check(not r.is_error, f"{tool} succeeds", r.structured_content or r.content)
    check(isinstance(r.structured_content, dict), f"{tool} has structured content")
    return r.structured_content


async def err(client, tool, args, code):
    r = await client.call_tool(tool, args)
    check(r.is_error, f"{tool} fails with {code}", r.structured_content)
    got = (r.structured_content or {}).get("error", {})
    check(got.get("code") == code, f"{tool} error code is {code}", got)
    check(got.get("message") and got.get("hint"), f"{code} has a message and a hint", got)
    return r.structured_content


async def two_agents(url):
    async with Client(url, mode="legacy") as alice, Client(url, mode="legacy") as bob:
        a = await ok(alice, "register_agent", {"name": "alice", "purpose": "interop"})
        b = await ok(bob, "register_agent", {"name": "bob"})
        check(a["agent_id"] != b["agent_id"], "two sessions are two agents", (a, b))

        r = await ok(alice, "propose_edit", {"ops": [{"create_function": {"text": F}}]})
        check(r["status"] == "committed", "alice creates interop::f", r)

        # Contention: bob sees alice as holder, queues, and is granted on release.
        held = await ok(alice, "acquire_locks", LOCK_F)
        check(held["granted"][0]["fencing_token"] > 0, "a grant carries a fencing token", held)
        denied = await err(bob, "acquire_locks", LOCK_F, "lock_denied")
        blocked = denied["blocked"][0]
        check(blocked["holders"][0]["agent_id"] == a["agent_id"], "denial names the holder", blocked)
        check(blocked["queue_position"] == 1, "bob would be first in the queue", blocked)

        progress = []

        async def on_progress(p, total, message):
            progress.append(p)

        waiter = asyncio.create_task(
            bob.call_tool("acquire_locks", {**LOCK_F, "wait_ms": 20000}, progress_callback=on_progress)
        )
        for _ in range(200):
            st = await ok(alice, "lock_status", {"function": "interop::f"})
            locks = st["locks"]
            if locks and locks[0]["waiters"]:
                break
            await asyncio.sleep(0.05)
        check(locks[0]["waiters"][0]["agent_id"] == b["agent_id"], "bob is visible in the queue", locks)
        await ok(alice, "release_locks", {"functions": ["interop::f"]})
        granted = await asyncio.wait_for(waiter, 10)
        check(not granted.is_error, "bob is granted from the queue", granted.structured_content)
        check(
            granted.structured_content["granted"][0]["fencing_token"] > held["granted"][0]["fencing_token"],
            "fencing tokens rise",
            granted.structured_content,
        )
        await ok(bob, "release_locks", {})

        # Optimistic edits: both read, alice commits, bob's stale edit on the
        # same node is refused with the diff, his disjoint one merges.
        await ok(alice, "get_function", {"function": "interop::f"})
        base = (await ok(bob, "get_function", {"function": "interop::f"}))["hash"]
        r = await ok(
            alice,
            "propose_edit",
            {"ops": [{"set_op": {"function": "interop::f", "node": "%1", "op": "const 10"}}], "purpose": "bump"},
        )
        check(r["status"] == "committed", "alice commits", r)
        c = await err(
            bob,
            "propose_edit",
            {"ops": [{"set_op": {"function": "interop::f", "node": "%1", "op": "const 20"}}]},
            "conflict",
        )
        conflict = c["conflicts"][0]
        check(conflict["commits"][0]["agent_id"] == a["agent_id"], "the conflict names alice's commit", conflict)
        changed = conflict["diff"]["nodes_changed"][0]
        check(
            (changed["id"], changed["before"], changed["after"]) == ("%1", "%1 = const 1", "%1 = const 10"),
            "the conflict carries the real before/after",
            changed,
        )
        m = await ok(
            bob,
            "propose_edit",
            {
                "ops": [{"set_op": {"function": "interop::f", "node": "%3", "op": "const 30"}}],
                "base": {"interop::f": base},
            },
        )
        check(m["functions"][0]["merged"] is True, "a disjoint stale edit is rebased", m)
        run = await ok(bob, "run_function", {"function": "interop::f", "args": [1]})
        check(run["value"] == 41, "the merged program computes 1 + 10 + 1 * 30", run)

        # Alice keeps a lock for the stdio scenario to see.
        await ok(alice, "acquire_locks", {"locks": [{"function": "interop::f", "mode": "read"}]})
        await stdio_session(a["agent_id"])
        await ok(alice, "release_locks", {})


async def stateless(url):
    # mode="auto" negotiates 2026-07-28 with cograph: no initialize, no
    # Mcp-Session-Id; identity is the register_agent handle.
    async with Client(url) as carol:
        await err(carol, "acquire_locks", LOCK_F, "session_required")
        reg = await ok(carol, "register_agent", {"name": "carol"})
        session = reg["session"]
        check(isinstance(session, str) and len(session) >= 32, "register_agent returns a secret handle", reg)
        got = await ok(carol, "acquire_locks", {**LOCK_F, "session": session})
        check(got["granted"][0]["resource"] == "interop::f", "the handle acquires", got)
        st = await ok(carol, "lock_status", {"function": "interop::f", "session": session})
        check(st["locks"][0]["holders"][0]["agent_id"] == reg["agent_id"], "the lock is carol's", st)
        await err(carol, "acquire_locks", {**LOCK_F, "session": "not-a-handle"}, "session_required")
        await ok(carol, "release_locks", {"session": session})


async def stdio_session(alice_id):
    params = StdioServerParameters(command=BINARY, args=["stdio", "--data", DATA])
    async with Client(params, mode="legacy") as dave:
        tools = await dave.list_tools()
        check(len(tools.tools) == 12, "stdio lists the twelve tools", [t.name for t in tools.tools])
        st = await ok(dave, "lock_status", {"function": "interop::f"})
        check(
            st["locks"][0]["holders"][0]["agent_id"] == alice_id,
            "a stdio agent sees the HTTP agent's lock through the hub",
            st,
        )
        agents = await ok(dave, "list_agents", {})
        check(len(agents["agents"]) >= 3, "the hub lists the HTTP agents and this one", agents)


async def main(url):
    await two_agents(url)
    await stateless(url)
    print(f"python mcp interop: {checks} checks passed")


if __name__ == "__main__":
    URL, BINARY, DATA = sys.argv[1:4]
    asyncio.run(main(URL))
