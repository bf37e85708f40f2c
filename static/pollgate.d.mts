/** `import Pollgate from 'pollgate/client'` (or `{ Pollgate }`): the types of pollgate.d.ts. */
import Pollgate from './pollgate.js';

export default Pollgate;
export { Pollgate };
