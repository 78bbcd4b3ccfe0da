export type { MappingSpec, ResolvedMapping } from "./resolve-mappings.js";
export { lowestCommonAncestor, mappingsOfLayer, resolveMappings } from "./resolve-mappings.js";
export { divideOutputs, scaleColumns, scaleRange, smoothingEdits } from "./apply-smoothing.js";
export type { ChannelRange, SmoothQuantState } from "./smooth-quant.js";
export { SmoothQuantModifier, foldChannelRange, smoothQuantScales } from "./smooth-quant.js";
export type { AwqResult, AwqSearch, BalanceLayer, DuoScaling, GridPoint } from "./awq-search.js";
export { awqGrid, awqScales, awqSearch, awqWeightMean, referenceOutputs, scaleBy } from "./awq-search.js";
export type { AwqCache, AwqMapping, AwqOptions, AwqState } from "./awq-modifier.js";
export { AWQModifier } from "./awq-modifier.js";
