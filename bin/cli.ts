console.log('disagg', process.argv.slice(2).join(' '));
