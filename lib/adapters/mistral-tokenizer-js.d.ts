// The package ships no types; this is the slice lib/adapters/tokenizers.ts uses.
declare module 'mistral-tokenizer-js' {
  interface MistralTokenizer {
    vocabById: string[];
    encode(
      prompt: string,
      addBos?: boolean,
      addPrecedingSpace?: boolean,
      logPerformance?: boolean,
    ): number[] | undefined;
    decode(tokenIds: number[], addBos?: boolean, addPrecedingSpace?: boolean): string;
  }
  const mistralTokenizer: MistralTokenizer;
  export default mistralTokenizer;
}
