// Independent OPC UA client for linetwin's alarm interop test (node-opcua).
// Usage: node alarm_client.js ENDPOINT SOURCE_NAME CONDITION_NODE_ID COMMENT
// Environment: LINETWIN_USER / LINETWIN_PASSWORD (user-name login, operator role).
// Subscribes to events of the Server object, prints "READY" once the subscription is live, waits for an active
// alarm from SOURCE_NAME, acknowledges it (Acknowledge, i=9111) with COMMENT, waits for the acknowledged
// event and prints one JSON object with both events and the Acknowledge status.
"use strict";
const {
  OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription, ClientMonitoredItem, MessageSecurityMode,
  SecurityPolicy, UserTokenType, DataType, LocalizedText, constructEventFilter,
} = require("node-opcua-client");

const FIELDS = ["EventId", "EventType", "SourceName", "Message", "Severity", "Retain", "ActiveState.Id",
  "AckedState.Id", "Comment", "ClientUserId"];

async function main() {
  const [endpoint, sourceName, conditionId, comment] = process.argv.slice(2);
  const client = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 1, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(endpoint);
  const session = await client.createSession({
    type: UserTokenType.UserName, userName: process.env.LINETWIN_USER, password: process.env.LINETWIN_PASSWORD,
  });
  const out = { events: [] };
  try {
    const sub = ClientSubscription.create(session, {
      requestedPublishingInterval: 100, requestedLifetimeCount: 100, requestedMaxKeepAliveCount: 10,
      maxNotificationsPerPublish: 100, publishingEnabled: true, priority: 1,
    });
    const item = ClientMonitoredItem.create(sub, { nodeId: "ns=0;i=2253", attributeId: AttributeIds.EventNotifier },
      { samplingInterval: 0, discardOldest: true, queueSize: 100, filter: constructEventFilter(FIELDS) },
      TimestampsToReturn.Both);
    const waiters = [];
    item.on("changed", (values) => {
      const ev = {};
      FIELDS.forEach((f, i) => { ev[f] = values[i].value; });
      if (ev.SourceName !== sourceName) { return; }
      out.events.push(ev);
      for (const w of waiters.splice(0)) { w(ev); }
    });
    const next = (pred, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out waiting for an alarm event")), ms);
      const check = (ev) => { if (pred(ev)) { clearTimeout(timer); resolve(ev); } else { waiters.push(check); } };
      waiters.push(check);
    });
    await new Promise((resolve) => item.once("initialized", resolve));
    process.stdout.write("READY\n");
    const active = await next((ev) => ev["ActiveState.Id"] === true, 30000);
    const ack = await session.call({
      objectId: conditionId, methodId: "ns=0;i=9111",
      inputArguments: [{ dataType: DataType.ByteString, value: active.EventId },
        { dataType: DataType.LocalizedText, value: new LocalizedText({ text: comment }) }],
    });
    out.acknowledgeStatus = ack.statusCode.name;
    const acked = await next((ev) => ev["AckedState.Id"] === true, 15000);
    out.active = { severity: active.Severity, retain: active.Retain, acked: active["AckedState.Id"] };
    out.acked = { comment: acked.Comment && acked.Comment.text, user: acked.ClientUserId, retain: acked.Retain };
    await sub.terminate();
  } finally {
    await session.close();
    await client.disconnect();
  }
  process.stdout.write(JSON.stringify(out, (k, v) => (typeof v === "bigint" ? Number(v) : v)) + "\n");
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
