// cograph driven by the TypeScript MCP SDK, v1 line (what most Node hosts
// embed). That client validates every `structuredContent` it receives,
// error results included, against the tool's advertised output schema, and
// throws when they disagree, so this checks that every success and every
// actionable error cograph sends matches its own schemas.
//
//   node ts_client.mjs URL COGRAPH_BIN STDIO_DATA_DIR
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [url, bin, stdioData] = process.argv.slice(2);
let checks = 0;
const check = (cond, what, detail) => {
  checks += 1;
  assert.ok(cond, `${what}: ${JSON.stringify(detail)}`);
};

const F = "fn tsclient::f(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 1\n  %2 = add %0, %1\n  %3 = return %2\n}\n";
const LOCK_F = { locks: [{ function: "tsclient::f", mode: "write" }] };

async function connect(name, transport) {
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  // The SDK compiles the output validators from tools/list.
  const { tools } = await client.listTools();
  check(tools.length === 12, `${name}: 12 tools`, tools.map((t) => t.name));
  for (const t of tools) {
    check(t.outputSchema?.type === "object", `${t.name}: output schema rooted at an object`, t.outputSchema);
  }
  return client;
}

async function ok(client, name, args) {
  const r = await client.callTool({ name, arguments: args });
  check(!r.isError, `${name} succeeds`, r.structuredContent ?? r.content);
  check(typeof r.structuredContent === "object", `${name} has structured content`, r);
  return r.structuredContent;
}

async function err(client, name, args, code) {
  // Before cograph's schemas admitted error results, this call threw
  // "Structured content does not match the tool's output schema".
  const r = await client.callTool({ name, arguments: args });
  check(r.isError === true, `${name} fails with ${code}`, r.structuredContent);
  const e = r.structuredContent?.error ?? {};
  check(e.code === code, `${name}: error code ${code}`, e);
  check(e.message && e.hint, `${code} has a message and a hint`, e);
  return r.structuredContent;
}

async function overHttp() {
  const alice = await connect("alice-ts", new StreamableHTTPClientTransport(new URL(url)));
  const bob = await connect("bob-ts", new StreamableHTTPClientTransport(new URL(url)));
  try {
    // Successes of every tool, each validated by the SDK against its schema.
    await ok(alice, "propose_edit", { ops: [{ create_function: { text: F } }] });
    await ok(alice, "program_overview", {});
    await ok(alice, "get_function", { function: "tsclient::f" });
    await ok(alice, "list_agents", {});
    const granted = await ok(alice, "acquire_locks", LOCK_F);
    check(granted.granted?.length === 1, "alice holds f", granted);
    await ok(alice, "register_agent", { name: "alice-ts", purpose: "checking schemas" });
    await ok(alice, "lock_status", { function: "tsclient::f" });
    await ok(alice, "propose_edit", { ops: [{ set_doc: { function: "tsclient::f", doc: "x + 1" } }] });
    await ok(alice, "history", { function: "tsclient::f" });
    await ok(alice, "diff", { function: "tsclient::f" });
    const ran = await ok(alice, "run_function", { function: "tsclient::f", args: [41] });
    check(ran.value === 42, "f(41) = 42", ran);
    const verified = await ok(alice, "verify_all", {});
    check(verified.ok === true, "the program verifies", verified);

    // Actionable failures: the SDK validates these too.
    const denied = await err(bob, "acquire_locks", LOCK_F, "lock_denied");
    check(denied.blocked?.[0]?.holders?.[0]?.agent_name === "alice-ts", "the holder is named", denied);
    await err(bob, "get_function", { function: "tsclient::nope" }, "not_found");
    await ok(bob, "get_function", { function: "tsclient::f" });
    const editDenied = await err(bob, "propose_edit", { ops: [{ set_doc: { function: "tsclient::f", doc: "bob" } }] }, "lock_denied");
    // One denial shape whichever tool gives it.
    check(editDenied.blocked?.[0]?.holders?.[0]?.agent_name === "alice-ts", "the edit denial names the holder", editDenied);
    check(editDenied.blocked?.[0]?.queue_position === denied.blocked?.[0]?.queue_position, "both denials give the queue place", editDenied);
    await ok(alice, "release_locks", {});
    // A stale edit: bob read f before alice changed %1.
    await ok(alice, "get_function", { function: "tsclient::f" });
    await ok(alice, "propose_edit", { ops: [{ set_op: { function: "tsclient::f", node: "%1", op: "const 2" } }] });
    const conflict = await err(
      bob,
      "propose_edit",
      { ops: [{ set_op: { function: "tsclient::f", node: "%1", op: "const 3" } }] },
      "conflict",
    );
    check(conflict.conflicts?.length === 1, "one conflicting function", conflict);
    await ok(bob, "get_function", { function: "tsclient::f" });
    await err(
      bob,
      "propose_edit",
      { ops: [{ set_inputs: { function: "tsclient::f", node: "%3", inputs: [] } }] },
      "verification_failed",
    );
    await err(bob, "run_function", { function: "tsclient::f", args: [] }, "runtime_error");
    await err(bob, "history", { function: "tsclient::nope" }, "not_found");
  } finally {
    await alice.close();
    await bob.close();
  }
}

async function overStdio() {
  const transport = new StdioClientTransport({
    command: bin,
    args: ["stdio", "--standalone", "--data", stdioData],
    env: { ...process.env, COGRAPH_LOG: "warn" },
    stderr: "ignore",
  });
  const client = await connect("stdio-ts", transport);
  try {
    await err(client, "get_function", { function: "no::such" }, "not_found");
    await ok(client, "verify_all", {});
  } finally {
    await client.close();
  }
}

await overHttp();
await overStdio();
console.log(`TypeScript SDK v1 client: ${checks} checks passed`);
