/**
 * How the collectors open the files they write (dead letters, checkpoints): fs/promises' open by
 * default. Fault tests pass one whose handles fail on the Nth write (ENOSPC, EMFILE), since a full
 * disk cannot be made on demand.
 */
import { open } from 'node:fs/promises';

export type OpenFile = typeof open;

export const openFile: OpenFile = open;
