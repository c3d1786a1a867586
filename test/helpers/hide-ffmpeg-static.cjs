// Preloaded into an ovis process (NODE_OPTIONS=--require this file) to make it run as if the
// optional dependency ffmpeg-static were not installed, whether or not its binary was downloaded on
// this machine: resolving the package fails exactly as it does when npm skipped it.
const Module = require('node:module');

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'ffmpeg-static') {
    const e = new Error("Cannot find module 'ffmpeg-static' (hidden by test/helpers/hide-ffmpeg-static.cjs)");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
