import type { ProtocolParser } from "../parser.js";
import { detectMqtt } from "./detect.js";
import { MqttSession } from "./parser.js";

/**
 * MQTT 3.1, 3.1.1 and 5.0 over TCP: CONNECT/CONNACK, PUBLISH (both directions, QoS 0/1/2 flows),
 * SUBSCRIBE/UNSUBSCRIBE, PING and DISCONNECT. Payloads are skipped by length and never recorded.
 */
export const mqtt: ProtocolParser = {
  name: "mqtt",
  transports: ["tcp"],
  ports: [1883],
  detect: (data, fromClient) => detectMqtt(data, fromClient),
  createSession: (options) => new MqttSession(options),
};
