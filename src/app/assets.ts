// The app's static files (CSS, JS), content-hashed once at start.
import { fileURLToPath } from 'node:url';
import { AssetStore } from '../kit/assets/asset-store.ts';

export const assets = new AssetStore(fileURLToPath(new URL('./static/', import.meta.url)));
