// node-opcua server for m2mbridge's opcua interop tests (M2MB_INTEROP=1).
//
// Environment:
//   PORT       TCP port to listen on (required)
//   PKI_DIR    folder for the server's PKI (certificates, trusted/rejected)
//   OPC_USER   user name accepted (default "operator")
//   OPC_PASS   its password (default "secret")
//   TICK_MS    how often the variables change (default 100)
//   EXTRA      number of extra Double variables x00000.. changing every tick
//   MAX_READ   MaxNodesPerRead operation limit (default 0 = no limit)
//
// Prints "READY <port>" on stdout when it accepts connections.
"use strict";
const path = require("path");
const {
  OPCUAServer,
  OPCUACertificateManager,
  Variant,
  DataType,
  StatusCodes,
  SecurityPolicy,
  MessageSecurityMode,
  standardUnits,
} = require("node-opcua");

const NS = "urn:m2mbridge:node-opcua";

async function main() {
  const port = parseInt(process.env.PORT, 10);
  if (!port) throw new Error("PORT is required");
  const pki = process.env.PKI_DIR || path.join(process.cwd(), "pki");
  const user = process.env.OPC_USER || "operator";
  const pass = process.env.OPC_PASS || "secret";
  const tick = parseInt(process.env.TICK_MS || "100", 10);
  const extra = parseInt(process.env.EXTRA || "0", 10);
  const maxRead = parseInt(process.env.MAX_READ || "0", 10);

  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, "server"),
    automaticallyAcceptUnknownCertificate: true,
  });
  await serverCertificateManager.initialize();
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, "user"),
    automaticallyAcceptUnknownCertificate: true,
  });
  await userCertificateManager.initialize();

  const server = new OPCUAServer({
    port,
    hostname: "127.0.0.1",
    alternateHostname: ["127.0.0.1"],
    resourcePath: "/",
    serverCertificateManager,
    userCertificateManager,
    securityPolicies: [
      SecurityPolicy.None,
      SecurityPolicy.Basic256Sha256,
      SecurityPolicy.Aes128_Sha256_RsaOaep,
      SecurityPolicy.Aes256_Sha256_RsaPss,
    ],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: true,
    userManager: { isValidUser: (u, p) => u === user && p === pass },
    serverCapabilities: { operationLimits: { maxNodesPerRead: maxRead, maxMonitoredItemsPerCall: 0 } },
    buildInfo: { productName: "m2mbridge interop", buildNumber: "1" },
  });
  await server.initialize();

  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.registerNamespace(NS);
  const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Sim" });
  const rw = { accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" };

  const v = {};
  const add = (name, dataType, value, opts) => {
    v[name] = ns.addVariable({
      componentOf: folder,
      nodeId: "s=" + name,
      browseName: name,
      dataType,
      minimumSamplingInterval: 10,
      ...(opts || {}),
    });
    v[name].setValueFromSource(new Variant({ dataType: DataType[dataType], value }), StatusCodes.Good, new Date());
  };
  add("Counter", "UInt32", 0);
  add("Ramp", "Double", 0);
  add("Fine", "Double", 0); // +0.1 per tick: for deadband tests
  add("Fault", "Double", 0);
  add("Text", "String", "tick-0");
  add("Setpoint", "Double", 0, rw);
  add("Mode", "Int32", 0, rw);
  // Read-only on the server: a write is answered BadNotWritable.
  add("Locked", "Double", 5, { accessLevel: "CurrentRead", userAccessLevel: "CurrentRead" });
  v.Temperature = ns.addAnalogDataItem({
    componentOf: folder,
    nodeId: "s=Temperature",
    browseName: "Temperature",
    dataType: "Double",
    engineeringUnitsRange: { low: -50, high: 150 },
    engineeringUnits: standardUnits.degree_celsius,
    minimumSamplingInterval: 10,
  });
  for (let i = 0; i < extra; i++) {
    add("x" + String(i).padStart(5, "0"), "Double", i);
  }

  let n = 0;
  const set = (name, dataType, value, status) =>
    v[name].setValueFromSource(new Variant({ dataType: DataType[dataType], value }), status || StatusCodes.Good, new Date());
  setInterval(() => {
    n++;
    set("Counter", "UInt32", n >>> 0);
    set("Ramp", "Double", n % 100);
    set("Fine", "Double", Math.round(n) / 10);
    set("Fault", "Double", n, StatusCodes.BadSensorFailure);
    set("Text", "String", "tick-" + n);
    set("Temperature", "Double", 20 + 5 * Math.sin(n / 20));
    for (let i = 0; i < extra; i++) {
      set("x" + String(i).padStart(5, "0"), "Double", n + i);
    }
  }, tick);

  await server.start();
  process.stdout.write("READY " + port + "\n");
  const stop = async () => {
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
