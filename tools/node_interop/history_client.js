// Independent OPC UA HistoryRead client for linetwin's historian interop test (node-opcua).
// Usage: node history_client.js ENDPOINT NAMESPACE_URI NODE_ID START_ISO END_ISO
// Reads the node's raw history (ReadRawModifiedDetails, following continuation points) and its 1-min
// Averages (ReadProcessedDetails) over [START, END), and prints one JSON object on stdout.
"use strict";
const { OPCUAClient, AttributeIds, MessageSecurityMode, SecurityPolicy, AggregateFunction } =
  require("node-opcua-client");

async function main() {
  const [endpoint, nsUri, id, start, end] = process.argv.slice(2);
  const client = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(endpoint);
  const session = await client.createSession();
  const out = {};
  try {
    const nsArray = (await session.read({ nodeId: "ns=0;i=2255", attributeId: AttributeIds.Value })).value.value;
    const nodeId = `ns=${nsArray.indexOf(nsUri)};s=${id}`;
    out.historizing = (await session.read({ nodeId, attributeId: AttributeIds.Historizing })).value.value;
    out.accessLevel = (await session.read({ nodeId, attributeId: AttributeIds.AccessLevel })).value.value;
    const raw = await session.readHistoryValue(nodeId, new Date(start), new Date(end));
    out.rawStatus = raw.statusCode.name;
    out.raw = (raw.historyData.dataValues || []).map((dv) => ({
      value: dv.value.value, status: dv.statusCode.name, sourceTimestamp: dv.sourceTimestamp.toISOString() }));
    const avg = await session.readAggregateValue({ nodeId }, new Date(start), new Date(end),
      AggregateFunction.Average, 60000);
    out.averageStatus = avg.statusCode.name;
    out.averages = (avg.historyData.dataValues || []).map((dv) => ({
      value: dv.value.value, status: dv.statusCode.value >>> 0, sourceTimestamp: dv.sourceTimestamp.toISOString() }));
  } finally {
    await session.close();
    await client.disconnect();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
