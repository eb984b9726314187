import type { L7Message, ResponseStatus } from "../../types.js";
import type { DnsInfo } from "./wire.js";

const QTYPE_NAMES: Readonly<Record<number, string>> = {
  1: "A",
  2: "NS",
  5: "CNAME",
  6: "SOA",
  12: "PTR",
  15: "MX",
  16: "TXT",
  28: "AAAA",
  33: "SRV",
  65: "HTTPS",
  255: "ANY",
};

const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
  11: "DSOTYPENI",
  16: "BADVERS",
  17: "BADKEY",
  18: "BADTIME",
  19: "BADMODE",
  20: "BADNAME",
  21: "BADALG",
  22: "BADTRUNC",
  23: "BADCOOKIE",
};

const OPCODE_NAMES: Readonly<Record<number, string>> = { 4: "NOTIFY", 5: "UPDATE" };

export const qtypeName = (t: number): string => QTYPE_NAMES[t] ?? `TYPE${t}`;
export const rcodeName = (r: number): string => RCODE_NAMES[r] ?? `RCODE${r}`;

/** RCODE -> status: the asker's fault for a bad or refused query and a name that does not exist. */
export function dnsStatus(rcode: number): ResponseStatus {
  switch (rcode) {
    case 0x0:
      return "ok";
    case 0x1: // FORMERR
    case 0x3: // NXDOMAIN
    case 0x5: // REFUSED
      return "client_error";
    default:
      return "server_error";
  }
}

/** The message fields of a parsed DNS message (timing, size and seq are the parser's). */
export function toMessage(info: DnsInfo): L7Message {
  const m: L7Message = {
    kind: info.response ? "response" : "request",
    key: info.id,
    startNs: 0,
    endNs: 0,
    bytes: 0,
    tid: 0,
  };
  const attributes: Record<string, string | number | boolean> = {};
  if (info.hasName) attributes["dns.question.name"] = info.name;
  if (info.opcode !== 0) attributes["dns.opcode"] = OPCODE_NAMES[info.opcode] ?? `OPCODE${info.opcode}`;
  if (info.response) {
    m.code = info.rcode;
    m.status = dnsStatus(info.rcode);
    if (info.rcode !== 0) m.exception = rcodeName(info.rcode);
    if (info.hasName) m.endpoint = info.name;
    attributes["dns.answers"] = info.ancount;
  } else {
    if (info.qtype >= 0) m.requestType = qtypeName(info.qtype);
    if (info.hasName) {
      m.resource = info.name;
      m.domain = info.name;
      m.endpoint = info.name;
    }
  }
  if (info.cut) attributes["kalman.truncated"] = true;
  m.attributes = attributes;
  return m;
}
