/*
 * KVP: the language of attention variants and KV-cache policies.
 * docs/language.md is the reference; this grammar is the syntax, the checker in compiler/ the meaning.
 * Statements end at the end of their expression; ';' may separate them but is never required.
 * Most words are soft keywords (see `ident`): `group`, `page`, `window` and the like stay usable as names.
 */
grammar Kvp;

file : importDecl* decl* EOF ;

importDecl : IMPORT STRING SEMI? ;

decl
  : policyDecl
  | fnDecl
  | attentionDecl
  | configDecl
  ;

// ---------------------------------------------------------------- policies

policyDecl : POLICY name=ident params? ( policyBlock | ASSIGN policyRef SEMI? ) ;

policyBlock : LBRACE policyItem* RBRACE ;

policyItem
  : POSITIONS positionMode=ident SEMI?                                                  # positionsItem
  | SELECTION PER scope=ident SEMI?                                             # selectionItem
  | OBSERVE expr QUERIES AT at=ident SEMI?                                   # observeItem
  | STATE name=ident COLON stateType PER stateScope (ASSIGN expr)? SEMI?        # stateItem
  | LET name=ident ASSIGN expr SEMI?                                            # letItem
  | ON event (COMMA event)* block                                               # onItem
  | EVERY expr block                                                            # everyItem
  | storeStmt SEMI?                                                             # storeItem
  | HEADS WHERE expr then=target OTHERWISE otherwise=target                     # headsItem
  | LAYERS layerRange target                                                    # layersItem
  ;

target : USE policyRef SEMI? | policyBlock ;

policyRef : name=ident (LPAREN argList? RPAREN)? ;

layerRange : from=expr (RANGE to=expr?)? ;

stateType : elem=ident (LBRACK ident (COMMA ident)* RBRACK)? ;

stateScope
  : TOKEN
  | LANE
  | MODEL
  | PAGE LPAREN expr RPAREN
  ;

event
  : PREFILL
  | CHUNK
  | DECODE
  | OVERFLOW LPAREN expr RPAREN
  ;

block : LBRACE stmt* RBRACE ;

stmt
  : LET name=ident ASSIGN expr SEMI?                                              # letStmt
  | KEEP expr SEMI?                                                               # keepStmt
  | EVICT expr SEMI?                                                              # evictStmt
  | ATTEND expr SEMI?                                                             # attendStmt
  | MERGE source=expr INTO dest=expr (BY mergeBy)? (WEIGHTED BY weight=expr)? SEMI? # mergeStmt
  | storeStmt SEMI?                                                               # storeStmtItem
  | ifClause                                                                      # ifStmt
  | name=ident op=(ASSIGN | PLUS_ASSIGN | MINUS_ASSIGN | STAR_ASSIGN) expr SEMI? # assignStmt
  ;

ifClause : IF expr block (ELSE (elseBlock=block | elseIf=ifClause))? ;

mergeBy
  : COSINE LPAREN ident RPAREN
  | NEAREST
  ;

storeStmt : STORE storeTarget (COMMA storeTarget)* AS format quantOption* storeScope? ;

storeTarget : KEYS | VALUES ;

format
  : INT LPAREN expr RPAREN
  | name=ident
  ;

quantOption
  : PER axis=ident
  | GROUP LPAREN expr RPAREN
  ;

storeScope
  : FOR expr
  | EXCEPT expr
  | OTHERWISE
  ;

// ---------------------------------------------------------------- functions and variants

fnDecl : FN name=ident params ARROW_T returnType=typeName LBRACE fnLet* expr SEMI? RBRACE ;

fnLet : LET name=ident ASSIGN expr SEMI? ;

attentionDecl : ATTENTION name=ident params? LBRACE attentionItem* RBRACE ;

attentionItem
  : LET name=ident ASSIGN expr SEMI?          # attnLet
  | LOGITS ASSIGN expr SEMI?                  # attnLogits
  | MASK ASSIGN expr SEMI?                    # attnMask
  | NORMALIZE how=ident SEMI?                 # attnNormalize
  ;

// ---------------------------------------------------------------- deployments

configDecl : CONFIG name=ident params? LBRACE configItem* RBRACE ;

configItem
  : ATTENTION policyRef SEMI?                                                 # configAttention
  | LAYERS layerRange target                                                  # configLayers
  | HEADS WHERE expr then=target OTHERWISE otherwise=target                   # configHeads
  ;

// ---------------------------------------------------------------- parameters and types

params : LPAREN (param (COMMA param)*)? RPAREN ;

param : name=ident COLON typeName (IN lo=expr RANGE hi=expr)? (ASSIGN expr)? ;

typeName : INT | FLOAT_T | BOOL | TABLE (LBRACK ident RBRACK)? | ident ;

// ---------------------------------------------------------------- expressions (first alternative binds tightest)

expr
  : primary                                                        # primaryExpr
  | op=(MINUS | NOT) expr                                          # unaryExpr
  | expr op=(STAR | SLASH | PERCENT) expr                          # mulExpr
  | expr op=AMP expr                                               # intersectExpr
  | expr op=(PLUS | MINUS) expr                                    # addExpr
  | expr WITHIN expr                                               # withinExpr
  | expr op=(LT | LE | GT | GE | EQ | NE) expr                     # compareExpr
  | expr AND expr                                                  # andExpr
  | expr OR expr                                                   # orExpr
  | <assoc=right> expr QUESTION expr COLON expr                    # condExpr
  ;

primary
  : INT_LIT                                            # intLit
  | FLOAT_LIT                                          # floatLit
  | (TRUE | FALSE)                                     # boolLit
  | STRING                                             # stringLit
  | LPAREN expr RPAREN                                 # parenExpr
  | ALL                                                # allSet
  | COMPENSATION                                       # compensationSet
  | (INT | FLOAT_T) LPAREN expr RPAREN                 # castExpr
  | TABLE LBRACK axis=ident RBRACK LPAREN argList? RPAREN   # axisTableExpr
  | callee=ident LPAREN argList? RPAREN                # callExpr
  | ident                                              # nameExpr
  ;

argList
  : arg (COMMA arg)* (COMMA overClause)?
  | overClause
  ;

arg
  : name=ident ASSIGN expr      # namedArg
  | PER HEAD AT LEAST expr      # perHeadArg
  | expr                        # positionalArg
  ;

overClause : OVER COLON ident (COMMA ident)* ;

// Soft keywords: words with a meaning in one place that remain ordinary names elsewhere.
ident
  : ID
  | POSITIONS | SELECTION | PER | OBSERVE | QUERIES | AT | TOKEN | LANE | MODEL | PAGE | PREFILL | CHUNK | DECODE
  | OVERFLOW | INTO | BY | WEIGHTED | COSINE | NEAREST | KEYS | VALUES | AS | GROUP | FOR | EXCEPT
  | HEADS | HEAD | WHERE | LAYERS | LOGITS | MASK | NORMALIZE | OVER | LEAST | TABLE | BOOL | IN
  ;

// ---------------------------------------------------------------- lexer

IMPORT : 'import' ;
POLICY : 'policy' ;
FN : 'fn' ;
ATTENTION : 'attention' ;
CONFIG : 'config' ;
STATE : 'state' ;
LET : 'let' ;
ON : 'on' ;
EVERY : 'every' ;
KEEP : 'keep' ;
EVICT : 'evict' ;
ATTEND : 'attend' ;
MERGE : 'merge' ;
STORE : 'store' ;
IF : 'if' ;
ELSE : 'else' ;
OTHERWISE : 'otherwise' ;
WITHIN : 'within' ;
ALL : 'all' ;
COMPENSATION : 'compensation' ;
TRUE : 'true' ;
FALSE : 'false' ;
INT : 'int' ;
FLOAT_T : 'float' ;

POSITIONS : 'positions' ;
SELECTION : 'selection' ;
PER : 'per' ;
OBSERVE : 'observe' ;
QUERIES : 'queries' ;
AT : 'at' ;
TOKEN : 'token' ;
LANE : 'lane' ;
MODEL : 'model' ;
PAGE : 'page' ;
PREFILL : 'prefill' ;
CHUNK : 'chunk' ;
DECODE : 'decode' ;
OVERFLOW : 'overflow' ;
INTO : 'into' ;
BY : 'by' ;
WEIGHTED : 'weighted' ;
COSINE : 'cosine' ;
NEAREST : 'nearest' ;
KEYS : 'keys' ;
VALUES : 'values' ;
AS : 'as' ;
GROUP : 'group' ;
FOR : 'for' ;
EXCEPT : 'except' ;
HEADS : 'heads' ;
HEAD : 'head' ;
WHERE : 'where' ;
USE : 'use' ;
LAYERS : 'layers' ;
LOGITS : 'logits' ;
MASK : 'mask' ;
NORMALIZE : 'normalize' ;
OVER : 'over' ;
LEAST : 'least' ;
TABLE : 'table' ;
BOOL : 'bool' ;
IN : 'in' ;

ARROW_T : '->' ;
RANGE : '..' ;
PLUS_ASSIGN : '+=' ;
MINUS_ASSIGN : '-=' ;
STAR_ASSIGN : '*=' ;
EQ : '==' ;
NE : '!=' ;
LE : '<=' ;
GE : '>=' ;
AND : '&&' ;
OR : '||' ;
ASSIGN : '=' ;
LT : '<' ;
GT : '>' ;
PLUS : '+' ;
MINUS : '-' ;
STAR : '*' ;
SLASH : '/' ;
PERCENT : '%' ;
AMP : '&' ;
NOT : '!' ;
QUESTION : '?' ;
COLON : ':' ;
SEMI : ';' ;
COMMA : ',' ;
LPAREN : '(' ;
RPAREN : ')' ;
LBRACE : '{' ;
RBRACE : '}' ;
LBRACK : '[' ;
RBRACK : ']' ;

FLOAT_LIT : DIGIT+ '.' DIGIT+ EXPONENT? | DIGIT+ EXPONENT ;
INT_LIT : DIGIT+ ;
STRING : '"' ( ~["\\\r\n] | '\\' ["\\nt] )* '"' ;
ID : [a-zA-Z_] [a-zA-Z_0-9]* ;

DOC_COMMENT : '///' ~[\r\n]* -> channel(2) ;
LINE_COMMENT : '//' ~[\r\n]* -> channel(3) ;
BLOCK_COMMENT : '/*' .*? '*/' -> channel(3) ;
WS : [ \t\r\n\f]+ -> channel(HIDDEN) ;

// Anything else is one bad character, reported by the checker with its position instead of a lexer crash.
BAD_CHAR : . ;

fragment DIGIT : [0-9] ;
fragment EXPONENT : [eE] [+-]? DIGIT+ ;
