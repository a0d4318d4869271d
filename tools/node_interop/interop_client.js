// Independent OPC UA client for linetwin's interop test (node-opcua).
// Usage: node interop_client.js ENDPOINT NAMESPACE_URI LINE UNIT TAG
// Browses Objects/LINE, reads UNIT.TAG (value, status, EngineeringUnits, EURange), subscribes to it
// until 3 data changes arrive (or 20 s pass), and prints one JSON object on stdout.
"use strict";
const {
  OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription, ClientMonitoredItem, MessageSecurityMode,
  SecurityPolicy,
} = require("node-opcua-client");

async function main() {
  const [endpoint, nsUri, line, unit, tag] = process.argv.slice(2);
  const client = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(endpoint);
  const session = await client.createSession();
  const out = { endpoint };
  try {
    const nsArray = (await session.read({ nodeId: "ns=0;i=2255", attributeId: AttributeIds.Value })).value.value;
    const ns = nsArray.indexOf(nsUri);
    out.namespaceIndex = ns;
    const objects = await session.browse("ns=0;i=85");
    out.objects = objects.references.map((r) => r.browseName.name);
    const lineRefs = await session.browse(`ns=${ns};s=${line}`);
    out.units = lineRefs.references.map((r) => ({ name: r.browseName.name, type: r.typeDefinition.toString() }));
    const tagId = `ns=${ns};s=${line}.${unit}.${tag}`;
    const dv = await session.read({ nodeId: tagId, attributeId: AttributeIds.Value });
    out.value = dv.value.value;
    out.status = dv.statusCode.name;
    out.sourceTimestamp = dv.sourceTimestamp ? dv.sourceTimestamp.toISOString() : null;
    const eu = await session.read({ nodeId: `${tagId}.EngineeringUnits`, attributeId: AttributeIds.Value });
    out.engineeringUnits = { unitId: eu.value.value.unitId, displayName: eu.value.value.displayName.text };
    const range = await session.read({ nodeId: `${tagId}.EURange`, attributeId: AttributeIds.Value });
    out.euRange = { low: range.value.value.low, high: range.value.value.high };
    const sub = ClientSubscription.create(session, {
      requestedPublishingInterval: 100, requestedLifetimeCount: 100, requestedMaxKeepAliveCount: 10,
      maxNotificationsPerPublish: 100, publishingEnabled: true, priority: 1,
    });
    const item = ClientMonitoredItem.create(sub, { nodeId: tagId, attributeId: AttributeIds.Value },
      { samplingInterval: 100, discardOldest: true, queueSize: 10 }, TimestampsToReturn.Both);
    out.notifications = [];
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 20000);
      item.on("changed", (v) => {
        out.notifications.push({ value: v.value.value, status: v.statusCode.name });
        if (out.notifications.length >= 3) { clearTimeout(timer); resolve(); }
      });
    });
    await sub.terminate();
  } finally {
    await session.close();
    await client.disconnect();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
