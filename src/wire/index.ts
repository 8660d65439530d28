export { decodeAgentMessage, decodeManagerResponse, decodeMessage } from './decode.js';
export { MessageEncoder } from './encode.js';
export {
  dataValueSizeBound,
  escapeModuleName,
  frameHeader,
  frameMessage,
  MAX_DATAGRAM_BYTES,
} from './framing.js';
export { MessageType } from './generated/wazuh/sync-schema/message-type.js';
export { Mode as WireMode } from './generated/wazuh/sync-schema/mode.js';
export { Operation as WireOperation } from './generated/wazuh/sync-schema/operation.js';
export { Status } from './generated/wazuh/sync-schema/status.js';
export * from './types.js';
export { verifyMessage } from './verify.js';
