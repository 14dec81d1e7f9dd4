// Surrogate keys of the app's public pages: what a write purges at the edge (req.edge.purge).
// `page`: every public page (a deploy that changes the layout purges them all); `link-CODE`:
// one link's preview, purged when the link is created, edited or deleted.
export const PAGE_KEY = 'page';
export const linkPageKey = (code: string): string => `link-${code}`;
