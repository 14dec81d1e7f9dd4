// TRUST_PROXY (src/kit/config.ts) as Fastify's trustProxy option. A list of addresses and
// CIDRs is passed as it is (Fastify checks each hop of X-Forwarded-For against it, from the
// socket's peer back, and believes X-Forwarded-Proto only from a trusted peer); a hop count
// becomes the function Fastify would build for it, since its types take no number.
export type TrustProxy = false | number | string[];

export function fastifyTrustProxy(setting: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return setting;
}
