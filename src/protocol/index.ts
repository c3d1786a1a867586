export * from './frame.js';
export * from './messages.js';
