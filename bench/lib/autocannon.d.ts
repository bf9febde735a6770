// Just the part of autocannon's API the bench uses (the package ships no types).
declare module 'autocannon' {
  interface Histogram { average: number; mean: number; p50: number; p99: number; total: number }
  interface Result { requests: Histogram; latency: Histogram; errors: number; timeouts: number; non2xx: number; duration: number; '2xx': number }
  interface Options {
    url: string; method?: string; headers?: Record<string, string>; body?: string;
    connections?: number; duration?: number; amount?: number; overallRate?: number; pipelining?: number;
    requests?: Array<{ setupRequest?: (req: { headers: Record<string, string> }) => unknown }>;
  }
  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
