// pollgate/client as an ES module: the browser client (pollgate.js, a UMD script that is CommonJS
// to Node and bundlers: see package.json here) as the default and the named export. docs/CLIENT.md
import Pollgate from './pollgate.js';

export default Pollgate;
export { Pollgate };
