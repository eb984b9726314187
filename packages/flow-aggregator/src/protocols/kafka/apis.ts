// Kafka API keys, versions and error codes (kafka.apache.org/protocol).

import type { ResponseStatus } from "../../types.js";

/** API keys the parser reads bodies of. */
export const ApiKey = {
  Produce: 0x00,
  Fetch: 0x01,
  FindCoordinator: 0x0a,
  JoinGroup: 0x0b,
  Heartbeat: 0x0c,
  LeaveGroup: 0x0d,
  SyncGroup: 0x0e,
  ApiVersions: 0x12,
  InitProducerId: 0x16,
} as const;

/** [name, highest version known] by API key; versions up to VERSION_SLACK above it are still accepted. */
const APIS: ReadonlyArray<readonly [string, number]> = [
  ["Produce", 13],
  ["Fetch", 18],
  ["ListOffsets", 10],
  ["Metadata", 13],
  ["LeaderAndIsr", 7],
  ["StopReplica", 4],
  ["UpdateMetadata", 8],
  ["ControlledShutdown", 3],
  ["OffsetCommit", 10],
  ["OffsetFetch", 10],
  ["FindCoordinator", 6],
  ["JoinGroup", 9],
  ["Heartbeat", 4],
  ["LeaveGroup", 5],
  ["SyncGroup", 5],
  ["DescribeGroups", 6],
  ["ListGroups", 5],
  ["SaslHandshake", 1],
  ["ApiVersions", 4],
  ["CreateTopics", 7],
  ["DeleteTopics", 6],
  ["DeleteRecords", 2],
  ["InitProducerId", 6],
  ["OffsetForLeaderEpoch", 4],
  ["AddPartitionsToTxn", 5],
  ["AddOffsetsToTxn", 4],
  ["EndTxn", 5],
  ["WriteTxnMarkers", 1],
  ["TxnOffsetCommit", 5],
  ["DescribeAcls", 3],
  ["CreateAcls", 3],
  ["DeleteAcls", 3],
  ["DescribeConfigs", 4],
  ["AlterConfigs", 2],
  ["AlterReplicaLogDirs", 2],
  ["DescribeLogDirs", 4],
  ["SaslAuthenticate", 2],
  ["CreatePartitions", 3],
  ["CreateDelegationToken", 3],
  ["RenewDelegationToken", 2],
  ["ExpireDelegationToken", 2],
  ["DescribeDelegationToken", 3],
  ["DeleteGroups", 2],
  ["ElectLeaders", 2],
  ["IncrementalAlterConfigs", 1],
  ["AlterPartitionReassignments", 1],
  ["ListPartitionReassignments", 0],
  ["OffsetDelete", 0],
  ["DescribeClientQuotas", 1],
  ["AlterClientQuotas", 1],
  ["DescribeUserScramCredentials", 0],
  ["AlterUserScramCredentials", 0],
  ["Vote", 2],
  ["BeginQuorumEpoch", 1],
  ["EndQuorumEpoch", 1],
  ["DescribeQuorum", 2],
  ["AlterPartition", 3],
  ["UpdateFeatures", 2],
  ["Envelope", 0],
  ["FetchSnapshot", 1],
  ["DescribeCluster", 2],
  ["DescribeProducers", 0],
  ["BrokerRegistration", 4],
  ["BrokerHeartbeat", 1],
  ["UnregisterBroker", 0],
  ["DescribeTransactions", 0],
  ["ListTransactions", 2],
  ["AllocateProducerIds", 0],
  ["ConsumerGroupHeartbeat", 1],
  ["ConsumerGroupDescribe", 1],
  ["ControllerRegistration", 0],
  ["GetTelemetrySubscriptions", 0],
  ["PushTelemetry", 0],
  ["AssignReplicasToDirs", 0],
  ["ListClientMetricsResources", 1],
  ["DescribeTopicPartitions", 0],
  ["ShareGroupHeartbeat", 1],
  ["ShareGroupDescribe", 1],
  ["ShareFetch", 1],
  ["ShareAcknowledge", 1],
  ["AddRaftVoter", 0],
  ["RemoveRaftVoter", 0],
  ["UpdateRaftVoter", 0],
  ["InitializeShareGroupState", 0],
  ["ReadShareGroupState", 0],
  ["WriteShareGroupState", 0],
  ["DeleteShareGroupState", 0],
  ["ReadShareGroupStateSummary", 0],
  ["StreamsGroupHeartbeat", 0],
  ["StreamsGroupDescribe", 0],
  ["DescribeShareGroupOffsets", 0],
  ["AlterShareGroupOffsets", 0],
  ["DeleteShareGroupOffsets", 0],
];

/** Newer brokers add versions before the table here knows them. */
const VERSION_SLACK = 4;

export function apiName(key: number): string {
  return APIS[key]?.[0] ?? `ApiKey${key}`;
}

/** A known API key with a version the protocol has (or soon may have). */
export function isKnownApi(key: number, version: number): boolean {
  const api = APIS[key];
  return api !== undefined && version >= 0 && version <= api[1] + VERSION_SLACK;
}

/** First flexible (compact strings, tagged fields) version of the APIs whose bodies are read; -1: never. */
export function firstFlexibleVersion(key: number): number {
  switch (key) {
    case ApiKey.Produce:
      return 9;
    case ApiKey.Fetch:
      return 12;
    case ApiKey.FindCoordinator:
      return 3;
    case ApiKey.JoinGroup:
      return 6;
    case ApiKey.Heartbeat:
    case ApiKey.LeaveGroup:
    case ApiKey.SyncGroup:
      return 4;
    case ApiKey.ApiVersions:
      return 3;
    case ApiKey.InitProducerId:
      return 2;
    default:
      return -1;
  }
}

export function isFlexible(key: number, version: number): boolean {
  const first = firstFlexibleVersion(key);
  return first >= 0 && version >= first;
}

/** Error names by code (-1 at index 0). */
const ERRORS = [
  "UNKNOWN_SERVER_ERROR",
  "NONE",
  "OFFSET_OUT_OF_RANGE",
  "CORRUPT_MESSAGE",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "INVALID_FETCH_SIZE",
  "LEADER_NOT_AVAILABLE",
  "NOT_LEADER_OR_FOLLOWER",
  "REQUEST_TIMED_OUT",
  "BROKER_NOT_AVAILABLE",
  "REPLICA_NOT_AVAILABLE",
  "MESSAGE_TOO_LARGE",
  "STALE_CONTROLLER_EPOCH",
  "OFFSET_METADATA_TOO_LARGE",
  "NETWORK_EXCEPTION",
  "COORDINATOR_LOAD_IN_PROGRESS",
  "COORDINATOR_NOT_AVAILABLE",
  "NOT_COORDINATOR",
  "INVALID_TOPIC_EXCEPTION",
  "RECORD_LIST_TOO_LARGE",
  "NOT_ENOUGH_REPLICAS",
  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
  "INVALID_REQUIRED_ACKS",
  "ILLEGAL_GENERATION",
  "INCONSISTENT_GROUP_PROTOCOL",
  "INVALID_GROUP_ID",
  "UNKNOWN_MEMBER_ID",
  "INVALID_SESSION_TIMEOUT",
  "REBALANCE_IN_PROGRESS",
  "INVALID_COMMIT_OFFSET_SIZE",
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "INVALID_TIMESTAMP",
  "UNSUPPORTED_SASL_MECHANISM",
  "ILLEGAL_SASL_STATE",
  "UNSUPPORTED_VERSION",
  "TOPIC_ALREADY_EXISTS",
  "INVALID_PARTITIONS",
  "INVALID_REPLICATION_FACTOR",
  "INVALID_REPLICA_ASSIGNMENT",
  "INVALID_CONFIG",
  "NOT_CONTROLLER",
  "INVALID_REQUEST",
  "UNSUPPORTED_FOR_MESSAGE_FORMAT",
  "POLICY_VIOLATION",
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "DUPLICATE_SEQUENCE_NUMBER",
  "INVALID_PRODUCER_EPOCH",
  "INVALID_TXN_STATE",
  "INVALID_PRODUCER_ID_MAPPING",
  "INVALID_TRANSACTION_TIMEOUT",
  "CONCURRENT_TRANSACTIONS",
  "TRANSACTION_COORDINATOR_FENCED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "SECURITY_DISABLED",
  "OPERATION_NOT_ATTEMPTED",
  "KAFKA_STORAGE_ERROR",
  "LOG_DIR_NOT_FOUND",
  "SASL_AUTHENTICATION_FAILED",
  "UNKNOWN_PRODUCER_ID",
  "REASSIGNMENT_IN_PROGRESS",
  "DELEGATION_TOKEN_AUTH_DISABLED",
  "DELEGATION_TOKEN_NOT_FOUND",
  "DELEGATION_TOKEN_OWNER_MISMATCH",
  "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
  "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
  "DELEGATION_TOKEN_EXPIRED",
  "INVALID_PRINCIPAL_TYPE",
  "NON_EMPTY_GROUP",
  "GROUP_ID_NOT_FOUND",
  "FETCH_SESSION_ID_NOT_FOUND",
  "INVALID_FETCH_SESSION_EPOCH",
  "LISTENER_NOT_FOUND",
  "TOPIC_DELETION_DISABLED",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "UNSUPPORTED_COMPRESSION_TYPE",
  "STALE_BROKER_EPOCH",
  "OFFSET_NOT_AVAILABLE",
  "MEMBER_ID_REQUIRED",
  "PREFERRED_LEADER_NOT_AVAILABLE",
  "GROUP_MAX_SIZE_REACHED",
  "FENCED_INSTANCE_ID",
  "ELIGIBLE_LEADERS_NOT_AVAILABLE",
  "ELECTION_NOT_NEEDED",
  "NO_REASSIGNMENT_IN_PROGRESS",
  "GROUP_SUBSCRIBED_TO_TOPIC",
  "INVALID_RECORD",
  "UNSTABLE_OFFSET_COMMIT",
  "THROTTLING_QUOTA_EXCEEDED",
  "PRODUCER_FENCED",
  "RESOURCE_NOT_FOUND",
  "DUPLICATE_RESOURCE",
  "UNACCEPTABLE_CREDENTIAL",
  "INCONSISTENT_VOTER_SET",
  "INVALID_UPDATE_VERSION",
  "FEATURE_UPDATE_FAILED",
  "PRINCIPAL_DESERIALIZATION_FAILURE",
  "SNAPSHOT_NOT_FOUND",
  "POSITION_OUT_OF_RANGE",
  "UNKNOWN_TOPIC_ID",
  "DUPLICATE_BROKER_REGISTRATION",
  "BROKER_ID_NOT_REGISTERED",
  "INCONSISTENT_TOPIC_ID",
  "INCONSISTENT_CLUSTER_ID",
  "TRANSACTIONAL_ID_NOT_FOUND",
  "FETCH_SESSION_TOPIC_ID_ERROR",
  "INELIGIBLE_REPLICA",
  "NEW_LEADER_ELECTED",
  "OFFSET_MOVED_TO_TIERED_STORAGE",
  "FENCED_MEMBER_EPOCH",
  "UNRELEASED_INSTANCE_ID",
  "UNSUPPORTED_ASSIGNOR",
  "STALE_MEMBER_EPOCH",
  "MISMATCHED_ENDPOINT_TYPE",
  "UNSUPPORTED_ENDPOINT_TYPE",
  "UNKNOWN_CONTROLLER_ID",
];

export function errorName(code: number): string {
  return ERRORS[code + 1] ?? `ERROR_${code}`;
}

/**
 * Errors that are the broker's or the cluster's state (leadership, availability, timeouts, storage), retriable
 * mostly: server errors. Everything else (unknown topic, authorization, bad request, stale group member) is the
 * request's: client errors.
 */
const SERVER_ERRORS: ReadonlySet<number> = new Set([
  -1, // UNKNOWN_SERVER_ERROR
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  7, // REQUEST_TIMED_OUT
  8, // BROKER_NOT_AVAILABLE
  9, // REPLICA_NOT_AVAILABLE
  11, // STALE_CONTROLLER_EPOCH
  13, // NETWORK_EXCEPTION
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  16, // NOT_COORDINATOR
  19, // NOT_ENOUGH_REPLICAS
  20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND
  41, // NOT_CONTROLLER
  51, // CONCURRENT_TRANSACTIONS
  56, // KAFKA_STORAGE_ERROR
  70, // FETCH_SESSION_ID_NOT_FOUND
  71, // INVALID_FETCH_SESSION_EPOCH
  72, // LISTENER_NOT_FOUND
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
  77, // STALE_BROKER_EPOCH
  78, // OFFSET_NOT_AVAILABLE
  80, // PREFERRED_LEADER_NOT_AVAILABLE
  83, // ELIGIBLE_LEADERS_NOT_AVAILABLE
  88, // UNSTABLE_OFFSET_COMMIT
  96, // FEATURE_UPDATE_FAILED
  97, // PRINCIPAL_DESERIALIZATION_FAILURE
  103, // INCONSISTENT_TOPIC_ID
  106, // FETCH_SESSION_TOPIC_ID_ERROR
  108, // NEW_LEADER_ELECTED
]);

export function errorStatus(code: number): ResponseStatus {
  if (code === 0) return "ok";
  return SERVER_ERRORS.has(code) ? "server_error" : "client_error";
}
