import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes: registered on the dev server at start, kept current by the workflow. */
export const TransferStatusKey = defineSearchAttributeKey('TransferStatus', SearchAttributeType.KEYWORD);
export const FromAccountKey = defineSearchAttributeKey('FromAccount', SearchAttributeType.KEYWORD);
export const ToAccountKey = defineSearchAttributeKey('ToAccount', SearchAttributeType.KEYWORD);
/** Minor units; omitted for amounts beyond 2^53, which a search attribute cannot carry exactly. */
export const AmountKey = defineSearchAttributeKey('Amount', SearchAttributeType.INT);
export const CurrencyKey = defineSearchAttributeKey('Currency', SearchAttributeType.KEYWORD);

export const TRANSFER_SEARCH_ATTRIBUTES = [TransferStatusKey, FromAccountKey, ToAccountKey, AmountKey, CurrencyKey];
