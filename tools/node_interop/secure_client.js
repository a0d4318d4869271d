// Independent OPC UA client for linetwin's security interop test (node-opcua).
// Usage: node secure_client.js ENDPOINT NODE_ID VALUE
// Environment: LINETWIN_POLICY (Basic256Sha256 | Aes256_Sha256_RsaPss), LINETWIN_MODE (Sign | SignAndEncrypt),
//   LINETWIN_CERT / LINETWIN_KEY (PEM application certificate and key), LINETWIN_APP_URI (its URI),
//   LINETWIN_PKI (a folder for node-opcua's own PKI), LINETWIN_USER / LINETWIN_PASSWORD (user-name login).
// Connects on the signed/encrypted channel, logs in with the user name, subscribes to events of the Server
// object, writes VALUE (Double) to NODE_ID, waits for the AuditWriteUpdateEvent (or 15 s), and prints one JSON
// object on stdout: security, user, writeStatus, readBack, events.
"use strict";
const {
  OPCUAClient, AttributeIds, TimestampsToReturn, ClientSubscription, ClientMonitoredItem, MessageSecurityMode,
  SecurityPolicy, UserTokenType, DataType, constructEventFilter,
} = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

const AUDIT_WRITE_UPDATE = "ns=0;i=2100";

async function main() {
  const [endpoint, nodeId, value] = process.argv.slice(2);
  const env = process.env;
  const clientCertificateManager = new OPCUACertificateManager({
    rootFolder: env.LINETWIN_PKI, automaticallyAcceptUnknownCertificate: true,
  });
  await clientCertificateManager.initialize();
  const client = OPCUAClient.create({
    endpointMustExist: false,
    securityMode: MessageSecurityMode[env.LINETWIN_MODE || "SignAndEncrypt"],
    securityPolicy: SecurityPolicy[env.LINETWIN_POLICY || "Basic256Sha256"],
    certificateFile: env.LINETWIN_CERT, privateKeyFile: env.LINETWIN_KEY, applicationUri: env.LINETWIN_APP_URI,
    applicationName: "linetwin-interop", clientCertificateManager,
    connectionStrategy: { maxRetry: 1, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(endpoint);
  const session = await client.createSession({
    type: UserTokenType.UserName, userName: env.LINETWIN_USER, password: env.LINETWIN_PASSWORD,
  });
  const out = { endpoint, security: `${env.LINETWIN_POLICY}/${env.LINETWIN_MODE}`, user: env.LINETWIN_USER };
  try {
    const sub = ClientSubscription.create(session, {
      requestedPublishingInterval: 100, requestedLifetimeCount: 100, requestedMaxKeepAliveCount: 10,
      maxNotificationsPerPublish: 100, publishingEnabled: true, priority: 1,
    });
    const fields = ["EventType", "SourceName", "Message", "ClientUserId", "Status", "OldValue", "NewValue"];
    const item = ClientMonitoredItem.create(sub, { nodeId: "ns=0;i=2253", attributeId: AttributeIds.EventNotifier },
      { samplingInterval: 0, discardOldest: true, queueSize: 100, filter: constructEventFilter(fields) },
      TimestampsToReturn.Both);
    out.events = [];
    let seen;
    const auditSeen = new Promise((resolve) => { seen = resolve; });
    item.on("changed", (values) => {
      const ev = {};
      fields.forEach((f, i) => { const v = values[i].value; ev[f] = v && v.toString ? v.toString() : v; });
      out.events.push(ev);
      if (ev.EventType === AUDIT_WRITE_UPDATE && ev.SourceName === nodeId.replace(/^ns=\d+;s=/, "")) { seen(); }
    });
    await new Promise((resolve) => item.once("initialized", resolve));
    const status = await session.write({
      nodeId, attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Double, value: Number(value) } },
    });
    out.writeStatus = status.name;
    out.readBack = (await session.read({ nodeId, attributeId: AttributeIds.Value })).value.value;
    await Promise.race([auditSeen, new Promise((resolve) => setTimeout(resolve, 15000))]);
    await sub.terminate();
  } finally {
    await session.close();
    await client.disconnect();
  }
  // exit once the result is out: node-opcua leaves a timer behind that kept node running ~15 s after the client
  // had closed its session and disconnected
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
