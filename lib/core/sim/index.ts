export * from './workload';
export * from './traces';
export * from './system-spec';
export * from './engine';
export * from './metrics';
export * from './prefix-cache';
export * from './report-data';
export * from './findings';
