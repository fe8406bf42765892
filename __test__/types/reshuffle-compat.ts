// Compiled by `tsc -p __test__/types/tsconfig.compat.json` (npm run lint): where reshuffle's and
// reshuffle-base-connector's types are expected (an app's setPersistentStore, reshuffle's
// PersistentStore, a connector's getPersistentStore()), our adapters and PersistentStore fit.
// Their own declaration files need skipLibCheck, so this is apart from usage.ts.
import { Reshuffle, PersistentStoreAdapter, PersistentStore as ReshufflePersistentStore } from 'reshuffle'
import type { PersistentStore as ConnectorPersistentStore } from 'reshuffle-base-connector'
import { MemoryStoreAdapter, FileStoreAdapter, SQLStoreAdapter, PersistentStore } from '../..'

const adapters: PersistentStoreAdapter[] = [
  new MemoryStoreAdapter(),
  new FileStoreAdapter('./state.json'),
  new SQLStoreAdapter('./state.db'),
  new PersistentStore(new MemoryStoreAdapter(), 'p/'),
]
const connectorStores: ConnectorPersistentStore[] = [
  new PersistentStore(new SQLStoreAdapter('./state.db'), 'connector/'),
  new MemoryStoreAdapter(),
]
const app = new Reshuffle()
app.setPersistentStore(new SQLStoreAdapter(':memory:'))
const theirs = new ReshufflePersistentStore(new FileStoreAdapter('./state.json'), 'x/')
const ours = new PersistentStore(theirs, 'y/')
void [adapters, connectorStores, ours]
