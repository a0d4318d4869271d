// Independent OPC UA client for linetwin's quality test (node-opcua): what a client sees through a comms loss.
// Usage: node quality_watch.js ENDPOINT NAMESPACE_URI NODE_ID_STRING
// Subscribes to ns=<NAMESPACE_URI>;s=<NODE_ID_STRING> and prints one JSON line per event on stdout:
//   {"event":"ready"}                                   once the monitored item exists
//   {"event":"change","value":..,"status":..,"sourceTimestamp":..}   every data change
//   {"event":"read","value":..,"status":..}             a Read of the node at the first change that is not Good
// Exits 0 after a Good change that follows a non-Good one (the source recovered), 1 after 120 s or on error.
"use strict";
const {
  OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription, ClientMonitoredItem, MessageSecurityMode,
  SecurityPolicy, StatusCodes,
} = require("node-opcua-client");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function plain(dataValue) {
  const v = dataValue.value ? dataValue.value.value : null;
  return {
    value: v === undefined ? null : v,
    status: dataValue.statusCode.name,
    good: dataValue.statusCode.value === StatusCodes.Good.value,
    sourceTimestamp: dataValue.sourceTimestamp ? dataValue.sourceTimestamp.toISOString() : null,
  };
}

async function main() {
  const [endpoint, nsUri, nodeName] = process.argv.slice(2);
  const client = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(endpoint);
  const session = await client.createSession();
  try {
    const nsArray = (await session.read({ nodeId: "ns=0;i=2255", attributeId: AttributeIds.Value })).value.value;
    const nodeId = `ns=${nsArray.indexOf(nsUri)};s=${nodeName}`;
    const sub = ClientSubscription.create(session, {
      requestedPublishingInterval: 100, requestedLifetimeCount: 600, requestedMaxKeepAliveCount: 20,
      maxNotificationsPerPublish: 1000, publishingEnabled: true, priority: 1,
    });
    const item = ClientMonitoredItem.create(sub, { nodeId, attributeId: AttributeIds.Value },
      { samplingInterval: 0, discardOldest: true, queueSize: 100 }, TimestampsToReturn.Both);
    let sawNotGood = false;
    let readDone = null;
    const recovered = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 120000);
      item.on("initialized", () => emit({ event: "ready" }));
      item.on("changed", (dv) => {
        const change = plain(dv);
        emit({ event: "change", ...change });
        if (!change.good && readDone === null) {
          readDone = session.read({ nodeId, attributeId: AttributeIds.Value })
            .then((r) => emit({ event: "read", ...plain(r) }))
            .catch((err) => emit({ event: "read_error", error: String(err) }));
        }
        if (!change.good) sawNotGood = true;
        if (change.good && sawNotGood) { clearTimeout(timer); resolve(true); }
      });
    });
    if (readDone !== null) await readDone;
    await sub.terminate();
    if (!recovered) process.exitCode = 1;
  } finally {
    await session.close();
    await client.disconnect();
  }
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
