// The sidebar's conversation list: GET /conversations newest first, open one, delete one after a
// confirmation in a <dialog>. What an opened conversation looks like is the chat's business, so
// opening and deleting are reported through hooks.
import { unavailable } from './api.js';
import { $, el } from './dom.js';

const PAGE_SIZE = 30;

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function titleOf(conversation) {
  return conversation.title || 'Untitled conversation';
}

/**
 * Wire the list. `call` is a jsonCaller; `current()` is the open conversation's id; `onOpen(id, data)`
 * shows a fetched transcript; `onDeleted(id)` hears that a conversation is gone; `onListed()` hears
 * that titles may have changed. Returns {load, titleFor}.
 */
export function conversationList({ call, current, onOpen, onDeleted, onListed }) {
  const ui = {
    list: $('conversations'), note: $('conversations-note'), more: $('more-conversations'),
    dialog: $('confirm-delete'), dialogText: $('confirm-text'), cancel: $('confirm-cancel'),
    confirm: $('confirm-delete-button'), newConversation: $('new-conversation'),
  };
  let listed = [];
  let nextCursor = null;
  let listTicket = 0;
  let openTicket = 0;
  let pendingDelete = null;

  function item(conversation) {
    const li = el('li', 'conversation');
    li.dataset.id = conversation.id;
    const open = el('button', 'conversation-open');
    open.type = 'button';
    open.title = titleOf(conversation);
    const turns = `${conversation.turns} ${conversation.turns === 1 ? 'turn' : 'turns'}`;
    open.append(el('span', 'conversation-title', titleOf(conversation)),
      el('span', 'conversation-meta', [turns, when(conversation.updated_at)].filter(Boolean).join(' · ')));
    if (conversation.id === current()) open.setAttribute('aria-current', 'true');
    const remove = el('button', 'conversation-delete', '✕');
    remove.type = 'button';
    remove.title = 'Delete';
    remove.setAttribute('aria-label', `Delete conversation: ${titleOf(conversation)}`);
    li.append(open, remove);
    return li;
  }

  function render() {
    ui.list.replaceChildren(...listed.map(item));
    ui.more.hidden = !nextCursor;
    onListed();
  }

  async function load({ more = false } = {}) {
    const ticket = ++listTicket;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (more && nextCursor) query.set('cursor', nextCursor);
    const result = await call(`conversations?${query}`);
    // A slower, older answer must not overwrite a newer one.
    if (ticket !== listTicket) return;
    if (!result.ok) {
      ui.note.textContent = unavailable('your conversations', result);
      if (!more) {
        listed = [];
        nextCursor = null;
        render();
      }
      return;
    }
    const page = result.data.data || [];
    listed = more ? listed.concat(page.filter((c) => !listed.some((l) => l.id === c.id))) : page;
    nextCursor = result.data.next_cursor || null;
    ui.note.textContent = listed.length ? '' : 'No conversations yet.';
    render();
  }

  async function open(id) {
    const ticket = ++openTicket;
    const result = await call(`conversations/${encodeURIComponent(id)}`);
    // Two quick clicks: only the conversation clicked last is shown.
    if (ticket !== openTicket) return;
    if (!result.ok) {
      ui.note.textContent = result.status === 404
        ? 'That conversation no longer exists.' : unavailable('that conversation', result);
      if (result.status === 404) load();
      return;
    }
    onOpen(id, result.data);
    render();
  }

  function askDelete(id) {
    const conversation = listed.find((c) => c.id === id);
    if (!conversation) return;
    pendingDelete = id;
    ui.dialogText.textContent = `“${titleOf(conversation)}” and all its messages will be erased from the server. `
      + 'This cannot be undone.';
    ui.dialog.showModal();
    ui.cancel.focus();
  }

  function focusNear(index) {
    const buttons = ui.list.querySelectorAll('.conversation-open');
    if (buttons.length) buttons[Math.min(index, buttons.length - 1)].focus();
    else ui.newConversation.focus();
  }

  async function deleteConfirmed() {
    const id = pendingDelete;
    if (!id) return;
    ui.confirm.disabled = true;
    const result = await call(`conversations/${encodeURIComponent(id)}`, { method: 'DELETE' });
    ui.confirm.disabled = false;
    if (!result.ok && result.status !== 404) {
      ui.dialogText.textContent = result.status === 401 ? 'Paste your API key (above) first.'
        : result.status === 0 ? 'Cannot reach chatgate. Try again.' : `Could not delete it (HTTP ${result.status}).`;
      return;
    }
    const index = listed.findIndex((c) => c.id === id);
    pendingDelete = null;
    ui.dialog.close();
    listed = listed.filter((c) => c.id !== id);
    onDeleted(id);
    render();
    ui.note.textContent = listed.length ? 'Conversation deleted.' : 'Conversation deleted. No conversations left.';
    focusNear(Math.max(index, 0));
  }

  ui.list.addEventListener('click', (event) => {
    const li = event.target.closest('.conversation');
    if (!li) return;
    if (event.target.closest('.conversation-delete')) askDelete(li.dataset.id);
    else if (event.target.closest('.conversation-open')) open(li.dataset.id);
  });
  ui.more.addEventListener('click', () => load({ more: true }));
  ui.cancel.addEventListener('click', () => ui.dialog.close());
  ui.confirm.addEventListener('click', deleteConfirmed);
  ui.dialog.addEventListener('close', () => {
    // Cancelled: focus goes back to the delete button that opened the dialog.
    if (!pendingDelete) return;
    const li = [...ui.list.children].find((node) => node.dataset.id === pendingDelete);
    pendingDelete = null;
    if (li) li.querySelector('.conversation-delete').focus();
  });

  return {
    load,
    render,
    /** The listed title of conversation `id`, or null while it is not listed. */
    titleFor: (id) => {
      const found = listed.find((c) => c.id === id);
      return found ? titleOf(found) : null;
    },
  };
}
