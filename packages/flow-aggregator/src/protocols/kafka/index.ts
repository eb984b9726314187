import type { ProtocolParser } from "../parser.js";
import { detectKafka } from "./detect.js";
import { KafkaSession } from "./parser.js";

/** Kafka wire protocol: framed by size, paired by correlation id; topic and error code of Produce and Fetch. */
export const kafka: ProtocolParser = {
  name: "kafka",
  transports: ["tcp"],
  ports: [9092],
  detect: (data, fromClient) => detectKafka(data, fromClient),
  createSession: (options) => new KafkaSession(options),
};
