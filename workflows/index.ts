export { transferWorkflow } from './transfer.js';
