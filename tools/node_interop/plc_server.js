// Independent OPC UA *server* (node-opcua) playing a PLC for linetwin's OPC UA adapter test.
// Usage: node plc_server.js PORT NAMESPACE_URI
// Serves, in NAMESPACE_URI (registered after a dummy namespace, so its index is not the usual one), an S7-style
// data block Objects/DataBlocksGlobal/DB_Crystallizer with string node ids:
//   "DB_Crystallizer"."Temperature"     Float,  measured, rises 0.1 degC every 100 ms, Good, source timestamps
//   "DB_Crystallizer"."Concentration"   Double, measured, status UncertainSensorNotAccurate (the PLC's own code)
//   "DB_Crystallizer"."JacketSetpoint"  Double, writable
//   "DB_Crystallizer"."AgitatorSpeed"   UInt16, writable; the PLC refuses values above 600 with BadOutOfRange
// each an AnalogItem with EURange and EngineeringUnits (UNECE). Prints "READY <port>" once listening.
"use strict";
const { OPCUAServer } = require("node-opcua-server");
const { Variant, DataType } = require("node-opcua-variant");
const { StatusCodes } = require("node-opcua-status-code");
const { DataValue } = require("node-opcua-data-value");
const { makeEUInformation, standardUnits } = require("node-opcua-data-access");

async function main() {
  const port = parseInt(process.argv[2], 10);
  const nsUri = process.argv[3];
  const server = new OPCUAServer({
    port, resourcePath: "/", buildInfo: { productName: "linetwin node-opcua test PLC" },
    allowAnonymous: true,
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  addressSpace.registerNamespace("urn:linetwin:test:placeholder");
  const ns = addressSpace.registerNamespace(nsUri);
  const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "DataBlocksGlobal" });
  const block = ns.addObject({ organizedBy: folder, browseName: "DB_Crystallizer", nodeId: 's="DB_Crystallizer"' });

  let temperature = 20.0;
  let temperatureStamp = new Date();
  const memory = { setpoint: 30.0, speed: 200 };

  const item = (name, dataType, range, unit, binding, writable) => ns.addAnalogDataItem({
    componentOf: block, browseName: name, nodeId: `s="DB_Crystallizer"."${name}"`, dataType,
    engineeringUnitsRange: { low: range[0], high: range[1] }, engineeringUnits: unit,
    accessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
    userAccessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
    minimumSamplingInterval: 50, value: binding,
  });

  const temperatureNode = item("Temperature", "Float", [-10, 100], standardUnits.degree_celsius, {
    timestamped_get: () => new DataValue({
      value: new Variant({ dataType: DataType.Float, value: temperature }), statusCode: StatusCodes.Good,
      sourceTimestamp: temperatureStamp, serverTimestamp: new Date(),
    }),
  }, false);
  const concentrationStamp = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  item("Concentration", "Double", [0, 500], makeEUInformation("KMQ", "kg/m³", "kilogram per cubic metre"), {
    timestamped_get: () => new DataValue({
      value: new Variant({ dataType: DataType.Double, value: 151.5 }),
      statusCode: StatusCodes.UncertainSensorNotAccurate, sourceTimestamp: concentrationStamp,
      serverTimestamp: new Date(),
    }),
  }, false);
  item("JacketSetpoint", "Double", [-20, 120], standardUnits.degree_celsius, {
    get: () => new Variant({ dataType: DataType.Double, value: memory.setpoint }),
    set: (variant) => { memory.setpoint = variant.value; return StatusCodes.Good; },
  }, true);
  item("AgitatorSpeed", "UInt16", [0, 800], standardUnits.revolutions_per_minute, {
    get: () => new Variant({ dataType: DataType.UInt16, value: memory.speed }),
    set: (variant) => {
      if (variant.value > 600) return StatusCodes.BadOutOfRange;
      memory.speed = variant.value;
      return StatusCodes.Good;
    },
  }, true);

  setInterval(() => {
    temperature += 0.1;
    temperatureStamp = new Date();
    temperatureNode.touchValue && temperatureNode.touchValue();
  }, 100);

  await server.start();
  process.stdout.write(`READY ${server.endpoints[0].port}\n`);
  const shutdown = async () => { await server.shutdown(0); process.exit(0); };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main().catch((err) => { process.stderr.write(`${err.stack || err}\n`); process.exit(1); });
