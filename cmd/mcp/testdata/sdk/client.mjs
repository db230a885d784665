// Drives millrace-mcp over stdio with the official MCP TypeScript SDK
// client: lists the tools, runs progress.ipynb waiting for it with progress
// notifications, runs rich.ipynb to its end polling its status, reads its
// logs, outputs and image resource, and provokes a tool error. The SDK
// checks every structured result against the tool's output schema. Prints
// a JSON summary on stdout for the Go test.
//
// usage: node client.mjs <root holding the notebooks> <millrace-mcp> [server args...]
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [root, command, ...args] = process.argv.slice(2);
const notebook = root + "/rich.ipynb";
const transport = new StdioClientTransport({ command, args, stderr: "inherit" });
const client = new Client({ name: "millrace-sdk-test", version: "1.0.0" });
await client.connect(transport);

const summary = { server: client.getServerVersion(), protocol: transport.protocolVersion ?? null };
const { tools } = await client.listTools();
summary.tools = tools.map((t) => t.name).sort();
summary.annotations = Object.fromEntries(tools.map((t) => [t.name, t.annotations]));

const inspected = await client.callTool({ name: "inspect_notebook", arguments: { path: notebook } });
summary.parameters = inspected.structuredContent.parameters.map((p) => p.name);

let progress = 0;
const waited = await client.callTool(
  { name: "start_notebook", arguments: { path: root + "/progress.ipynb", parameters: { delay: 1.2 }, wait_seconds: 50 } },
  undefined,
  { onprogress: () => progress++, resetTimeoutOnProgress: true, timeout: 120000 },
);
if (waited.isError) throw new Error("start_notebook: " + JSON.stringify(waited.content));
summary.waitedStatus = waited.structuredContent.status;
summary.startText = waited.content.find((c) => c.type === "text")?.text ?? "";

const started = await client.callTool({ name: "start_notebook", arguments: { path: notebook, parameters: { msg: "from node" } } });
if (started.isError) throw new Error("start_notebook: " + JSON.stringify(started.content));
const jobId = started.structuredContent.job_id;
let status = started.structuredContent.status;
for (let i = 0; i < 240 && (status === "PENDING" || status === "RUNNING"); i++) {
  await new Promise((r) => setTimeout(r, 500));
  const st = await client.callTool({ name: "get_job_status", arguments: { job_id: jobId } });
  status = st.structuredContent.status;
}
summary.jobId = jobId;
summary.status = status;
summary.progressNotifications = progress;

const logs = await client.callTool({ name: "get_job_logs", arguments: { job_id: jobId } });
summary.logLines = logs.structuredContent.lines.map((l) => l.text);
summary.logsDone = logs.structuredContent.done;

const output = await client.callTool({ name: "get_job_output", arguments: { job_id: jobId } });
const links = output.content.filter((c) => c.type === "resource_link");
summary.links = links.map((l) => l.mimeType);
const image = links.find((l) => l.mimeType === "image/png");
if (image) {
  const read = await client.readResource({ uri: image.uri });
  const blob = read.contents.find((c) => c.mimeType === "image/png")?.blob ?? "";
  summary.imageHeader = Buffer.from(blob, "base64").subarray(1, 4).toString("latin1");
}

const bad = await client.callTool({ name: "get_job_status", arguments: { job_id: "nb-00000000-0000-0000-0000-000000000000" } });
summary.errorIsError = bad.isError === true;
summary.errorText = bad.content.find((c) => c.type === "text")?.text ?? "";

await client.close();
process.stdout.write(JSON.stringify(summary) + "\n");
