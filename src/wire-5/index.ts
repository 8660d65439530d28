// The Wazuh 5.0 FullSession wire codec (schemas/fullSession.fbs), used by the
// 'fullSession' session driver and the mock manager's 5.0 front. Internal: the
// package's API speaks in sessions, not in FlatBuffers tables.
export { decodeFullSession } from './decode.js';
export { FullSessionEncoder } from './encode.js';
export { MessageType } from './generated/wazuh/sync-schema/message-type.js';
export { Mode } from './generated/wazuh/sync-schema/mode.js';
export { Operation } from './generated/wazuh/sync-schema/operation.js';
export { Option } from './generated/wazuh/sync-schema/option.js';
export { SessionPayload } from './generated/wazuh/sync-schema/session-payload.js';
export * from './types.js';
export { verifyMessage } from './verify.js';
