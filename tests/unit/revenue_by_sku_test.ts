// examples/revenue_by_sku.ts run as a user would (a subprocess), checked against an independent
// computation: a plain loop over the input file, summing price × qty of purchases per
// (1-second window, SKU). Malformed lines must reach the dead-letter file and never the output.
import assert from "node:assert/strict";
import { writeEvents } from "../../examples/generate_events.ts";

const root = new URL("../../", import.meta.url);
const example = new URL("examples/revenue_by_sku.ts", root).pathname;

/** A truncated JSON line and a JSON line without `ts`: both must be dead-lettered. */
const BAD = [
  '{"id":"bad","userId":"u1","sku":"SKU-BAD","type":"purchase","price":3,',
  '{"id":"nots","userId":"u1","sku":"SKU-NOTS","type":"purchase","price":2,"qty":1}',
];

/** Writes 20 000 generated events (2 of them truncated) plus BAD at lines 5001 and 12001. */
async function input(dir: string): Promise<string> {
  const path = `${dir}/events.ndjson`;
  await writeEvents(path, { count: 20_000, seed: 7 });
  const lines = (await Deno.readTextFile(path)).split("\n");
  lines.splice(5000, 0, BAD[0]!);
  lines.splice(12000, 0, BAD[1]!);
  await Deno.writeTextFile(path, lines.join("\n"));
  return path;
}

/** The reference: a plain loop, no Sluice code involved. */
async function expected(path: string): Promise<string[]> {
  const sums = new Map<string, number>();
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (line.trim() === "") continue;
    let e: { sku: string; type: string; price: number; qty: number; ts: unknown };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof e.ts !== "number" || e.type !== "purchase") continue;
    const key = `${e.ts - (e.ts % 1000)}|${e.sku}`;
    sums.set(key, (sums.get(key) ?? 0) + e.price * e.qty);
  }
  return [...sums].map(([key, revenue]) => `${key}|${round(revenue)}`).sort();
}

const round = (x: number) => (Math.round(x * 1e6) / 1e6).toFixed(6);

async function run(mode: "workers" | "inline", parallelism: number) {
  const dir = await Deno.makeTempDir({ prefix: "sluice-w1-test-" });
  try {
    const path = await input(dir);
    const command = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        example,
        "--input",
        path,
        "--output",
        `${dir}/out.ndjson`,
        "--dead-letters",
        `${dir}/dead.ndjson`,
        "--mode",
        mode,
        "--parallelism",
        String(parallelism),
      ],
      cwd: root.pathname,
      stdout: "piped",
      stderr: "piped",
    });
    const { code, stdout, stderr } = await command.output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const output = (await Deno.readTextFile(`${dir}/out.ndjson`)).split("\n").filter(Boolean)
      .map((l) => JSON.parse(l) as { windowStart: number; sku: string; revenue: number });
    const dead = (await Deno.readTextFile(`${dir}/dead.ndjson`)).split("\n").filter(Boolean)
      .map((l) =>
        JSON.parse(l) as { record: { value: unknown; headers?: Record<string, string> } }
      );
    return { text, output, dead, want: await expected(path) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function check(mode: "workers" | "inline", parallelism: number): Promise<void> {
  const { text, output, dead, want } = await run(mode, parallelism);
  for (const o of output) assert.deepEqual(Object.keys(o), ["windowStart", "sku", "revenue"]);
  const got = output.map((o) => `${o.windowStart}|${o.sku}|${round(o.revenue)}`).sort();
  assert.equal(got.length, want.length);
  assert.deepEqual(got, want);
  assert.ok(!output.some((o) => o.sku === "SKU-BAD" || o.sku === "SKU-NOTS"));
  // Two truncated generated lines (10 000 and 20 000 before the splices) plus BAD.
  const lines = dead.map((d) => d.record.headers?.line).sort();
  assert.deepEqual(lines, ["10001", "12001", "20002", "5001"]);
  assert.ok(dead.some((d) => d.record.value === BAD[0]));
  assert.match(
    text,
    new RegExp(
      `^revenue_by_sku: 20002 records in, \\d+ purchases, ${want.length} windows out, ` +
        `4 dead letters, `,
    ),
  );
}

Deno.test("revenue_by_sku matches a plain loop over the input in workers mode (parallelism 2)", () =>
  check("workers", 2));

Deno.test("revenue_by_sku matches a plain loop over the input in inline mode", () =>
  check("inline", 2));
