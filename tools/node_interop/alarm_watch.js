// Independent OPC UA client for linetwin's alarm test (node-opcua): an operator's alarm client.
// Usage: node alarm_watch.js ENDPOINT CONDITION_ID COMMENT
//   CONDITION_ID: the condition's node id as text, e.g. "ns=2;s=pilot_line.feed_tank.alarms.jacket_temperature_limit"
// Subscribes to events of the Server object (i=2253) and prints one JSON line per step on stdout:
//   {"step":"ready"}                                        the event monitored item exists
//   {"step":"event", ...fields}                             every event (condition fields below)
//   {"step":"acknowledge","status":..}                      Acknowledge(EventId, COMMENT) on the first active event
//   {"step":"reconnect"}                                    after the return-to-normal event: new connection
//   {"step":"refresh","status":..}                          ConditionRefresh on the new session's subscription
//   {"step":"done"}                                         RefreshEnd arrived after the refresh
// Exits 0 when done, 1 after 150 s or on error.
"use strict";
const {
  OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription, ClientMonitoredItem, MessageSecurityMode,
  SecurityPolicy, DataType, constructEventFilter, UserTokenType,
} = require("node-opcua-client");

const FIELDS = ["EventId", "EventType", "SourceName", "Message", "Severity", "ConditionName", "Retain",
  "ActiveState.Id", "AckedState.Id", "ConfirmedState.Id", "Comment", "ConditionId"];
const REFRESH_START = "ns=0;i=2787";
const REFRESH_END = "ns=0;i=2788";

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function plain(variants) {
  const out = {};
  FIELDS.forEach((name, i) => {
    const v = variants[i] ? variants[i].value : null;
    if (v === null || v === undefined) out[name] = null;
    else if (Buffer.isBuffer(v)) out[name] = v.toString("hex");
    else if (v.text !== undefined) out[name] = v.text;
    else if (typeof v === "object" && v.toString && v.namespace !== undefined) out[name] = v.toString();
    else out[name] = v;
  });
  return out;
}

async function watch(session, onEvent) {
  const sub = ClientSubscription.create(session, {
    requestedPublishingInterval: 100, requestedLifetimeCount: 600, requestedMaxKeepAliveCount: 20,
    maxNotificationsPerPublish: 1000, publishingEnabled: true, priority: 1,
  });
  await new Promise((resolve) => sub.on("started", resolve));
  const item = ClientMonitoredItem.create(sub, { nodeId: "ns=0;i=2253", attributeId: AttributeIds.EventNotifier },
    { samplingInterval: 0, discardOldest: true, queueSize: 1000, filter: constructEventFilter(FIELDS) },
    TimestampsToReturn.Both);
  item.on("changed", (variants) => onEvent(plain(variants)));
  await new Promise((resolve, reject) => {
    item.on("initialized", resolve);
    item.on("err", (e) => reject(new Error(String(e))));
  });
  return sub;
}

async function main() {
  const [endpoint, conditionId, comment] = process.argv.slice(2);
  const client = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
  });
  setTimeout(() => { emit({ step: "timeout" }); process.exit(1); }, 150000);
  await client.connect(endpoint);
  // the operator's login (Acknowledge/Confirm need the operator role); anonymous when not given
  const identity = process.env.LINETWIN_USER
    ? { type: UserTokenType.UserName, userName: process.env.LINETWIN_USER, password: process.env.LINETWIN_PASSWORD }
    : undefined;
  let session = await client.createSession(identity);
  let phase = "raise";
  const cleared = new Promise((resolve) => {
    watch(session, async (ev) => {
      emit({ step: "event", ...ev });
      if (ev.ConditionId !== conditionId) return;
      if (phase === "raise" && ev["ActiveState.Id"] === true) {
        phase = "acknowledging";
        const result = await session.call({
          objectId: conditionId, methodId: "ns=0;i=9111",
          inputArguments: [{ dataType: DataType.ByteString, value: Buffer.from(ev.EventId, "hex") },
            { dataType: DataType.LocalizedText, value: { text: comment } }],
        });
        emit({ step: "acknowledge", status: result.statusCode.name });
        phase = "acked";
      } else if (phase === "acked" && ev["ActiveState.Id"] === false) {
        phase = "cleared";
        resolve();
      }
    }).then(() => emit({ step: "ready" }));
  });
  await cleared;
  await session.close();
  await client.disconnect();
  emit({ step: "reconnect" });  // a new connection (a new session on the same channel gets no publish answers)
  const again = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
  });
  await again.connect(endpoint);
  session = await again.createSession(identity);
  let refreshing = false;
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  const sub = await watch(session, (ev) => {
    emit({ step: "event", ...ev });
    if (refreshing && ev.EventType === REFRESH_END) done();
  });
  refreshing = true;
  const result = await session.call({
    objectId: "ns=0;i=2782", methodId: "ns=0;i=3875",
    inputArguments: [{ dataType: DataType.UInt32, value: sub.subscriptionId }],
  });
  emit({ step: "refresh", status: result.statusCode.name, refreshStart: REFRESH_START });
  await finished;
  emit({ step: "done" });
  await session.close();
  await again.disconnect();
  process.exit(0);
}

main().catch((err) => {
  emit({ step: "error", message: String(err && err.stack || err) });
  process.exit(1);
});
